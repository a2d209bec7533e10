"""Normalizing-flow steps as pure functions, each returning the new point and its log|det J|.

A flow `z_T = f_T(... f_1(z_0))` on `z_0 ~ q_0(z | x)` has the density
`log q(z_T | x) = log q_0(z_0 | x) - sum_t log |det df_t / dz_{t-1}|` (Rezende & Mohamed, 2015).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def planar_flow(z: jax.Array, u: jax.Array, w: jax.Array, b: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """One planar flow `f(z) = z + u_hat tanh(w . z + b)` (Rezende & Mohamed, 2015, Sec. 4.1).

  `u_hat = u + (m(w . u) - w . u) w / |w|^2` with `m(a) = softplus(a) - 1` makes
  `w . u_hat >= -1`, so f is invertible (their Appendix A.1). The log-determinant is
  `log |1 + tanh'(w . z + b) w . u_hat| = log1p(tanh'(.) m(w . u))`.

  Args:
    z, u, w: `[..., L]`; b: `[...]`.

  Returns:
    `(f(z) [..., L], log|det df/dz| [...])`.
  """
  wu = jnp.sum(w * u, axis=-1)
  m = jax.nn.softplus(wu) - 1.0
  u_hat = u + ((m - wu) / jnp.sum(jnp.square(w), axis=-1))[..., None] * w
  a = jnp.tanh(jnp.sum(w * z, axis=-1) + b)
  return z + u_hat * a[..., None], jnp.log1p((1.0 - jnp.square(a)) * m)


def iaf_step(z: jax.Array, mean: jax.Array, gate_logit: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """One inverse autoregressive flow step (Kingma et al., 2016, Eq. 14), numerically stable form.

  `sigma = sigmoid(gate_logit)`, `f(z) = sigma * z + (1 - sigma) * mean`, where `mean_i` and
  `gate_logit_i` depend only on `z_{<i}` (an autoregressive network), so the Jacobian is triangular
  with diagonal `sigma` and `log|det| = sum_i log sigmoid(gate_logit_i)`.

  Args:
    z, mean, gate_logit: `[..., L]`.

  Returns:
    `(f(z) [..., L], log|det df/dz| [...])`.
  """
  sigma = jax.nn.sigmoid(gate_logit)
  return sigma * z + (1.0 - sigma) * mean, jnp.sum(jax.nn.log_sigmoid(gate_logit), axis=-1)


def made_masks(num_inputs: int, hidden_sizes: tuple[int, ...]) -> list[np.ndarray]:
  """MADE masks (Germain et al., 2015) for inputs with degrees `1..L` and outputs with the same.

  Hidden unit k of every layer has degree `1 + k mod max(L - 1, 1)`; a unit connects to one of the
  previous layer when its degree is >= that unit's, and output i to hidden units of degree < i, so
  output i depends only on inputs `< i`. Returns one `[n_in, n_out]` 0/1 mask per layer.
  """
  degrees = [np.arange(1, num_inputs + 1)]
  for size in hidden_sizes:
    degrees.append(1 + np.arange(size) % max(num_inputs - 1, 1))
  masks = [(d_out[None, :] >= d_in[:, None]).astype(np.float32)
           for d_in, d_out in zip(degrees[:-1], degrees[1:])]
  masks.append((np.arange(1, num_inputs + 1)[None, :] > degrees[-1][:, None]).astype(np.float32))
  return masks


class MaskedDense(nn.Module):
  """`x @ (kernel * mask) + bias`: a Dense layer with a fixed 0/1 connectivity `mask [n_in, n_out]`."""

  mask: np.ndarray
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, self.mask.shape)
    bias = self.param("bias", nn.initializers.zeros, self.mask.shape[-1:])
    return x @ (kernel * jnp.asarray(self.mask)) + bias


class AutoregressiveNet(nn.Module):
  """`(z [..., L], context [..., H]) -> (mean, gate_logit)`, each `[..., L]`, output i a function of
  `z_{<i}` and the context only (MADE with the context added to the first hidden layer)."""

  hidden_sizes: tuple[int, ...]
  activation: str = "elu"

  @nn.compact
  def __call__(self, z: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    masks = made_masks(z.shape[-1], self.hidden_sizes)
    act = getattr(nn, self.activation)
    h = act(MaskedDense(masks[0])(z) + nn.Dense(self.hidden_sizes[0])(context))
    for mask in masks[1:-1]:
      h = act(MaskedDense(mask)(h))
    mean = MaskedDense(masks[-1])(h)
    # Gate initialised near sigmoid(1.5): the step starts close to the identity (Kingma et al.).
    gate_logit = MaskedDense(masks[-1], kernel_init=nn.initializers.zeros)(h) + 1.5
    return mean, gate_logit
