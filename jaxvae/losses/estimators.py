"""Objectives that trade tightness for the inference network's gradient, and gradient estimators
with lower variance: MIWAE, CIWAE and PIWAE (Rainforth et al., 2018, "Tighter variational bounds
are not necessarily better"), doubly reparameterized gradients (DReG; Tucker et al., 2019) and
"sticking the landing" (STL; Roeder et al., 2017).

Every function is per example, `[K, B] -> [B]`, on log weights `log w = log p(x, z) - log q(z | x)`
with `z = z(phi, eps)` reparameterized. Two kinds of log weights appear:

- `log_weights`: log q evaluated as the model computes it;
- `frozen`: the same draws with log q evaluated at `z` with q's parameters held fixed
  (`stop_gradient` on the parameters, not on z). Its gradient keeps the path through z and drops
  the score term `d/dphi log q_phi(z)` at fixed z, whose expectation is zero.

The value of each surrogate is its bound (`stop_gradient` makes the gradient the estimator's), so
a logged loss still means the bound. Samples of group m are `m * K + k`, `k < K`, for M groups.
"""

import chex
import jax
import jax.numpy as jnp

from jaxvae.losses.bounds import elbo, iwae_bound


def _value_of(value: jax.Array, surrogate: jax.Array) -> jax.Array:
  """`value` in the forward pass, the gradient of `surrogate` in the backward pass."""
  return jax.lax.stop_gradient(value) + surrogate - jax.lax.stop_gradient(surrogate)


def stl_elbo(frozen: jax.Array) -> jax.Array:
  """The ELBO with the "sticking the landing" gradient (Roeder et al., 2017): `[K, B] -> [B]`.

  `mean_k frozen[k]`: the generative parameters get the ELBO's gradient, the inference parameters
  only its path term, which has zero variance when q is the exact posterior.
  """
  return elbo(frozen)


def dreg_iwae(frozen: jax.Array) -> jax.Array:
  """The IWAE bound with the doubly reparameterized gradient of Tucker et al. (2019), for the
  inference parameters only: `[K, B] -> [B]`.

  Surrogate `sum_k sg(w~_k)^2 frozen[k]`, `w~ = softmax_k(frozen)`: its gradient w.r.t. the
  inference parameters is `sum_k w~_k^2 d log w_k / dz dz_k / dphi`, an unbiased estimate of the
  IWAE bound's gradient whose signal-to-noise ratio does not fall with K. The generative
  parameters need the plain IWAE gradient (`iwae_bound(log_weights)`): keep the two apart.
  """
  chex.assert_rank(frozen, 2)
  weights = jax.lax.stop_gradient(jax.nn.softmax(frozen, axis=0))
  return _value_of(iwae_bound(frozen), jnp.sum(jnp.square(weights) * frozen, axis=0))


def miwae(log_weights: jax.Array, num_groups: int) -> jax.Array:
  """MIWAE: the mean over `num_groups` groups of the IWAE bound of K samples each, with
  `K * num_groups` log weights: `[M K, B] -> [B]`. M = 1 is IWAE, K = 1 the M-sample ELBO."""
  chex.assert_rank(log_weights, 2)
  total = log_weights.shape[0]
  if num_groups < 1 or total % num_groups:
    raise ValueError(f"{total} log weights do not split into {num_groups} equal groups")
  grouped = log_weights.reshape((num_groups, total // num_groups) + log_weights.shape[1:])
  return jnp.mean(jax.vmap(iwae_bound)(grouped), axis=0)


def ciwae(log_weights: jax.Array, beta: float) -> jax.Array:
  """CIWAE: `beta * ELBO + (1 - beta) * IWAE` on the same K samples: `[K, B] -> [B]`."""
  if not 0 <= beta <= 1:
    raise ValueError(f"the CIWAE mixing weight beta must be in [0, 1], got {beta}")
  return beta * elbo(log_weights) + (1 - beta) * iwae_bound(log_weights)
