"""Monte Carlo KL divergence, for pairs without a closed form (mixtures, flows, learned priors).

Analytic KLs live beside their distributions (`kl_diag_gaussians`, `kl_full_gaussians`,
`kl_categoricals`, ...). Which one a model uses is its explicit choice: call the analytic function
where a closed form exists and `monte_carlo_kl` otherwise.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def monte_carlo_kl(
    key: jax.Array,
    sample_q: Callable[[jax.Array], jax.Array],
    log_prob_q: Callable[[jax.Array], jax.Array],
    log_prob_p: Callable[[jax.Array], jax.Array],
    num_samples: int,
) -> jax.Array:
  """Unbiased estimate `KL(q || p) ~= (1/N) sum_n [log q(z_n) - log p(z_n)]`, `z_n ~ q`.

  Args:
    key: a `jax.random.key`.
    sample_q: `key -> z [..., D]`, one draw from q (reparameterized, if gradients are wanted).
    log_prob_q, log_prob_p: `z [..., D] -> [...]`.
    num_samples: N, a Python int.

  Returns:
    `[...]`, the mean over the N draws (per example; no reduction over batch axes). Its standard
    error is `std_n[log q - log p] / sqrt(N)`.

  Example:
    >>> kl = monte_carlo_kl(key, lambda k: diag_gaussian_sample(k, mu, lv),
    ...                     lambda z: diag_gaussian_log_prob(z, mu, lv),
    ...                     lambda z: mixture_diag_gaussian_log_prob(z, logits, means, log_vars), 16)
  """
  def one(k):
    z = sample_q(k)
    return log_prob_q(z) - log_prob_p(z)

  return jnp.mean(jax.vmap(one)(jax.random.split(key, num_samples)), axis=0)
