"""The score-function (REINFORCE) gradient estimator with a control-variate baseline.

For `L(theta) = E_{z ~ q_theta}[f(z, theta)]` (Williams, 1992; Paisley et al., 2012; Mnih & Gregor,
2014), `grad L = E_q[grad_theta f + (f - b) grad_theta log q_theta(z)]` for any baseline `b` that
does not depend on `z`. It needs no reparameterization, so it serves discrete latents; for
continuous ones it has higher variance than the reparameterization gradient.
"""

import chex
import jax
import jax.numpy as jnp


def score_function_surrogate(
    f: jax.Array, log_q: jax.Array, baseline: jax.Array | float = 0.0
) -> jax.Array:
  """A surrogate whose value is `f` and whose gradient is the REINFORCE estimator.

  `f + sg(f - b) * (log_q - sg(log_q))`: the second term is zero in value, and `jax.grad` of the
  surrogate gives `grad f + (f - b) grad log q` per sample. Average it over samples and
  maximize it (or minimize its negation).

  Args:
    f: `[K, ...]` `f(z_k, theta)` at samples `z_k ~ q_theta` drawn WITHOUT a gradient path (apply
      `jax.lax.stop_gradient` to a reparameterized sample, or sample a discrete distribution).
    log_q: `[K, ...]` `log q_theta(z_k)`, differentiable in theta.
    baseline: a control variate `b`, broadcastable to `f`, independent of `z_k` (stop-gradient is
      applied): e.g. a running mean of f, a learned `b(x)`, or `leave_one_out_baseline(f)`.

  Example:
    >>> z = jax.lax.stop_gradient(bernoulli_sample(key, logits))          # [K, B, D]
    >>> f = log_joint(x, z) - bernoulli_log_prob(z, logits)               # [K, B]
    >>> objective = score_function_surrogate(f, bernoulli_log_prob(z, logits),
    ...                                      leave_one_out_baseline(f)).mean(0)
  """
  chex.assert_equal_shape([f, log_q])
  weight = jax.lax.stop_gradient(f - baseline)
  return f + weight * (log_q - jax.lax.stop_gradient(log_q))


def leave_one_out_baseline(f: jax.Array) -> jax.Array:
  """Baseline for sample k from the other K - 1 samples: `sg(sum_{j != k} f_j / (K - 1))`, `[K, ...]`.

  Independent of `z_k`, so the estimator stays unbiased (Kool et al., 2019; Mnih & Rezende, 2016).
  Needs K >= 2.
  """
  k = f.shape[0]
  if k < 2:
    raise ValueError(
        f"leave_one_out_baseline needs at least 2 samples on axis 0, got shape {f.shape}")
  f = jax.lax.stop_gradient(f)
  return (jnp.sum(f, axis=0, keepdims=True) - f) / (k - 1)
