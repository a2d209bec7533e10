"""Diagnostics of the amortized posterior, and its per-example refinement (the amortization gap).

Diagnostics (active units, KL per dimension) need a model with capability `FACTORIZED_KL`
(diagonal Gaussian q, N(0, I) prior); refinement one with `POSTERIOR_PARAMETERS`. For any other
model `posterior_problem` says why they are unavailable, and the log p(x) evaluation itself is
unaffected.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvae import losses
from jaxvae.models import interface

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016), Sec. 5.2.


def posterior_problem(model, capability: interface.Capability) -> str | None:
  """None if `model` declares `capability`; else why the diagnostic that needs it is unavailable."""
  if interface.has(model, capability):
    return None
  return (f"{type(model).__name__} does not declare capability {capability.name} (see "
          f"jaxvae/models/interface.py)")


def diagnostics(posterior_means: np.ndarray, kl_per_dim: np.ndarray) -> dict:
  """Active units, KL per dimension and a collapse warning, from every example of a split.

  Args:
    posterior_means: `[N, L]` `E_q[z | x_n]`.
    kl_per_dim: `[N, L]` `KL(q(z_d | x_n) || p(z_d))`.

  Returns:
    `{num_latents, active_units, latent_activity [L], kl_per_dim [L], kl, warning}`: unit d is
    active when `A_d = Cov_x(E_q[z_d | x]) > 0.01` (Burda et al., 2016), `A_d` being the variance
    over the N examples (divisor N); `kl_per_dim` is the mean over examples; `warning` is a message
    when some dimension is inactive (posterior collapse), else None.
  """
  means = np.asarray(posterior_means, np.float64)
  activity = means.var(axis=0)
  kl = np.asarray(kl_per_dim, np.float64).mean(axis=0)
  active = int(np.sum(activity > ACTIVE_UNIT_THRESHOLD))
  warning = None
  if active < activity.size:
    collapsed = np.flatnonzero(activity <= ACTIVE_UNIT_THRESHOLD)
    warning = (f"posterior collapse: {activity.size - active} of {activity.size} latent dimensions "
               f"are inactive (Cov_x(E_q[z_d]) <= {ACTIVE_UNIT_THRESHOLD}; dimensions "
               f"{', '.join(map(str, collapsed[:20]))}{' ...' if collapsed.size > 20 else ''}) and "
               f"carry {kl[collapsed].sum():.4f} of the {kl.sum():.4f} nats of KL")
  return {"num_latents": int(activity.size), "active_units": active,
          "latent_activity": [float(a) for a in activity], "kl_per_dim": [float(k) for k in kl],
          "kl": float(kl.sum()), "warning": warning}


def refine_posterior(
    log_weights_fn, posterior, example_keys: jax.Array, *, num_steps: int, num_samples: int,
    learning_rate: float):
  """Each example's own posterior parameters, fitted by gradient ascent on its own ELBO.

  Starting from the encoder's output, `num_steps` Adam steps on `sum_b ELBO_b(mean_b, log_var_b)`
  (each example's parameters get only their own ELBO's gradient), the ELBO estimated with
  `num_samples` reparameterized draws per step, drawn with `fold_in(example_key, step * S + s)`.
  Non-amortized (black-box) variational inference as in Cremer et al. (2018), "Inference
  Suboptimality in Variational Autoencoders": refined minus amortized ELBO is the amortization gap.

  Args:
    log_weights_fn: `(posterior, keys [S, B]) -> [S, B]` log weights under `posterior`.
    posterior: the encoder's parameters of q (a pytree of `[B, ...]` float arrays).
    example_keys: `[B]` keys, one per example.

  Returns:
    The refined parameters, shaped as `posterior`.
  """
  optimizer = optax.adam(learning_rate)
  posterior = jax.tree.map(jax.lax.stop_gradient, posterior)

  def negative_elbo(post, step):
    keys = losses.sample_keys(example_keys, step * num_samples + jnp.arange(num_samples))
    return -jnp.sum(losses.elbo(log_weights_fn(post, keys)))

  def update(carry, step):
    post, opt_state = carry
    grads = jax.grad(negative_elbo)(post, step)
    updates, opt_state = optimizer.update(grads, opt_state, post)
    return (optax.apply_updates(post, updates), opt_state), None

  (posterior, _), _ = jax.lax.scan(update, (posterior, optimizer.init(posterior)),
                                   jnp.arange(num_steps))
  return posterior

