"""Networks shared by the models."""

from collections.abc import Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
  """`[..., D_in] -> [..., out_size]`: Dense layers of `hidden_sizes` with `activation`, then a linear one."""

  hidden_sizes: Sequence[int]
  out_size: int
  activation: str = "tanh"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for size in self.hidden_sizes:
      x = getattr(nn, self.activation)(nn.Dense(size)(x))
    return nn.Dense(self.out_size)(x)
