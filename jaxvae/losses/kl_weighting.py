"""Weighting of the KL term: the warm-up schedule and free bits."""

import jax
import jax.numpy as jnp


def kl_warmup_beta(step: jax.Array | int, warmup_steps: int, beta_max: float = 1.0) -> jax.Array:
  """Linear KL warm-up `beta = beta_max * min(1, step / warmup_steps)` (Bowman et al., 2016;
  Sønderby et al., 2016): a float32 scalar, jit-safe for a traced `step`.

  `warmup_steps = 0` means no warm-up (`beta_max` from step 0). Pass the result as `beta` to
  `elbo_kl_form`.
  """
  step = jnp.asarray(step, jnp.float32)
  if warmup_steps <= 0:
    return jnp.full_like(step, beta_max)
  return beta_max * jnp.clip(step / warmup_steps, 0.0, 1.0)


def free_bits_kl(kl_per_group: jax.Array, free_bits: float) -> jax.Array:
  """KL with free bits (Kingma et al., 2016, IAF): `sum_g max(KL_g, lambda)`: `[..., G] -> [...]`.

  Args:
    kl_per_group: `[..., G]` KL in nats of each group of latents (a latent dimension, or a layer of
      a hierarchy), e.g. the per-dimension terms `0.5 * (exp(lv) + m^2 - 1 - lv)`.
    free_bits: lambda, nats allowed per group for free: groups below it get no gradient, so the
      optimizer cannot collapse them to the prior.

  Kingma et al. clamp the minibatch mean of each group; to do that, pass
  `jnp.mean(kl_per_group, axis=0, keepdims=True)` and broadcast the result. The clamped value is an
  objective for training, not a bound: report the unclamped ELBO.
  """
  return jnp.sum(jnp.maximum(kl_per_group, free_bits), axis=-1)
