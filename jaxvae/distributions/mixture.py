"""Mixtures of diagonal Gaussians, as pure functions.

`p(x) = sum_m pi_m N(x; mean_m, diag(exp(log_var_m)))` with `pi = softmax(logits)`.
Shapes: `logits [..., M]`, `means [..., M, D]`, `log_vars [..., M, D]`, `x [..., D]`; the event axis
`D` is reduced, leading axes broadcast. Neither the entropy nor a KL against a mixture has a closed
form: use `monte_carlo_kl` from `jaxvae.distributions`.
"""

import jax
import jax.numpy as jnp

from jaxvae.distributions.gaussian import diag_gaussian_log_prob


def mixture_diag_gaussian_log_prob(
    x: jax.Array, logits: jax.Array, means: jax.Array, log_vars: jax.Array
) -> jax.Array:
  """log p(x) = `logsumexp_m [log_softmax(logits)_m + log N(x; mean_m, exp(log_var_m))]`: `[...]`.

  Example:
    >>> mixture_diag_gaussian_log_prob(x, jnp.zeros(10), prior_means, prior_log_vars)  # VampPrior-like
  """
  component = diag_gaussian_log_prob(x[..., None, :], means, log_vars)  # [..., M]
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + component, axis=-1)


def mixture_diag_gaussian_sample(
    key: jax.Array, logits: jax.Array, means: jax.Array, log_vars: jax.Array,
    component: jax.Array | None = None,
) -> jax.Array:
  """A draw `x [..., D]`: pick `m ~ Categorical(softmax(logits))`, then `x = mean_m + sigma_m eps`.

  Reparameterized given the component (gradients reach `means` and `log_vars`), but not through
  the discrete choice of `m`, so no gradient reaches `logits`; use the score-function estimator
  (`jaxvae.losses.score_function_surrogate`) or `mixture_diag_gaussian_log_prob` for those.
  `component` (int, broadcastable to `[...]`), when given, fixes `m` instead of drawing it, as
  stratified sampling does; `eps` comes from the same half of `key` either way.
  """
  key_component, key_noise = jax.random.split(key)
  batch = jnp.broadcast_shapes(logits.shape[:-1], means.shape[:-2], log_vars.shape[:-2])
  d = jnp.broadcast_shapes(means.shape[-1:], log_vars.shape[-1:])[0]
  logits = jnp.broadcast_to(logits, batch + logits.shape[-1:])
  if component is None:
    component = jax.random.categorical(key_component, logits)
  one_hot = jax.nn.one_hot(component, logits.shape[-1], dtype=means.dtype)[..., None]  # [..., M, 1]
  mean = jnp.sum(one_hot * means, axis=-2)
  log_var = jnp.sum(one_hot * log_vars, axis=-2)
  eps = jax.random.normal(key_noise, batch + (d,), means.dtype)
  return mean + jnp.exp(0.5 * log_var) * eps


def mixture_diag_gaussian_mean(logits: jax.Array, means: jax.Array) -> jax.Array:
  """The mixture's mean `sum_m pi_m mean_m`: `[..., M], [..., M, D] -> [..., D]`."""
  return jnp.sum(jax.nn.softmax(logits, axis=-1)[..., None] * means, axis=-2)
