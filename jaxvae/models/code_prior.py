"""A learned prior over a VQ-VAE's codes: a causal transformer over the grid of code indices in
raster order (an autoregressive prior, as the PixelCNN of van den Oord et al., 2017), trained as a
second stage on the codes of a frozen VQ-VAE.

    p(c) = prod_l p(c_l | c_<l),   log p(x) >= log p(x | z_q(c)) + log p(c),   c = codes of x

`VQPrior` answers the one model interface with that bound, so `jaxvae train`, `jaxvae eval` and
`jaxvae sample` serve it as any other model; its config names the first stage's workdir.
"""

import dataclasses
import math
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae.models.interface import LogWeights
from jaxvae.models.vqvae import VQVAE


class CausalTransformer(nn.Module):
  """`codes [B, L]` -> logits `[B, L, N]` of `p(c_l | c_<l)`: a start token and `codes[:, :-1]`,
  embedded with learned positions, through `num_layers` pre-LayerNorm blocks of causal
  self-attention and an MLP (Vaswani et al., 2017; Radford et al., 2019)."""

  num_codes: int
  length: int
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4

  @nn.compact
  def __call__(self, codes: jax.Array) -> jax.Array:
    start = jnp.full(codes.shape[:1] + (1,), self.num_codes, codes.dtype)
    tokens = jnp.concatenate([start, codes[:, :-1]], axis=1)  # [B, L]
    positions = self.param("positions", nn.initializers.normal(0.02), (self.length, self.width))
    h = nn.Embed(self.num_codes + 1, self.width)(tokens) + positions
    mask = nn.make_causal_mask(tokens)  # [B, 1, L, L]
    for _ in range(self.num_layers):
      h = h + nn.MultiHeadDotProductAttention(self.num_heads)(nn.LayerNorm()(h), mask=mask)
      r = nn.gelu(nn.Dense(4 * self.width)(nn.LayerNorm()(h)))
      h = h + nn.Dense(self.width)(r)
    return nn.Dense(self.num_codes)(nn.LayerNorm()(h))

  def log_prob(self, codes: jax.Array) -> jax.Array:
    """`log p(codes)`: `[B, L] -> [B]`."""
    log_p = jax.nn.log_softmax(self(codes), axis=-1)
    return jnp.sum(jnp.take_along_axis(log_p, codes[..., None], axis=-1)[..., 0], axis=-1)

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    """`[num, L]` codes drawn one position at a time (position l from `fold_in(key, l)`)."""
    def draw(l, codes):
      logits = self(codes)[:, l]
      return codes.at[:, l].set(jax.random.categorical(jax.random.fold_in(key, l), logits))
    return jax.lax.fori_loop(0, self.length, draw, jnp.zeros((num, self.length), jnp.int32))


@dataclasses.dataclass(frozen=True, eq=False)
class FrozenStage:
  """A trained VQ-VAE and its parameters (NumPy arrays), held by `VQPrior` outside its own
  parameters: they are constants of its computations, never trained."""

  model: VQVAE
  params: Any


class VQPrior(nn.Module):
  """The bound `log p(x | z_q) + log p(c)` of a frozen VQ-VAE `stage` with a learned code prior."""

  stage: FrozenStage
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4

  @property
  def data_shape(self) -> tuple[int, ...]:
    return self.stage.model.data_shape

  def setup(self):
    self.prior = CausalTransformer(self.stage.model.num_codes,
                                   math.prod(self.stage.model.grid_shape), self.width,
                                   self.num_layers, self.num_heads)

  def _stage(self, *args, method):
    return self.stage.model.apply({"params": self.stage.params}, *args, method=method)

  def encode(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`x [B, H, W, C]` -> the frozen VQ-VAE's codes `[B, h, w]`."""
    return self._stage(x, method=VQVAE.encode)

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`log p(x | z_q) + log p(c)` for the codes c of x, as `[K, B]` fields (the K rows equal)."""
    codes = self.encode(x)
    log_likelihood = self._stage(x, codes, method=VQVAE.log_likelihood)
    log_prior = self.prior.log_prob(codes.reshape(codes.shape[0], -1))
    shape = keys.shape[:1] + log_likelihood.shape
    return LogWeights(log_likelihood=jnp.broadcast_to(log_likelihood, shape),
                      log_prior=jnp.broadcast_to(log_prior, shape), log_posterior=jnp.zeros(shape))

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z_q(c)) for codes c drawn from the learned prior: `[num, H, W, C]`."""
    codes = self.prior.sample(key, num).reshape((num,) + self.stage.model.grid_shape)
    return self._stage(codes, method=VQVAE.mean)

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """The frozen VQ-VAE's reconstruction of `x`: `[B, H, W, C]`."""
    return self._stage(x, method=VQVAE.reconstruct)

  def __call__(self, x: jax.Array, keys: jax.Array, labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def load_first_stage(workdir: str, data_shape: tuple[int, ...]) -> FrozenStage:
  """The VQ-VAE trained in `workdir` (its latest checkpoint's parameters, on the host).

  Raises `UserError` when `workdir` holds no trained VQ-VAE for data of shape `data_shape`.
  """
  import numpy as np

  from jaxvae import config as config_lib
  from jaxvae import data as data_lib
  from jaxvae.errors import UserError
  from jaxvae.models import build_model
  from jaxvae.runtime import checkpoint as checkpoint_lib
  from jaxvae.train.state import abstract_params

  config = config_lib.load_config(os.path.join(workdir, "config.json"))
  if config.model.kind != "vqvae":
    raise UserError(f"model.first_stage_workdir={workdir} holds a model.kind="
                    f"{config.model.kind!r} run; the code prior needs a 'vqvae' run")
  shape = tuple(data_lib.load_split(config.data, config.data.eval_split).image_shape)
  if shape != tuple(data_shape):
    raise UserError(f"the first stage in {workdir} was trained on data of shape {shape}, these "
                    f"are {tuple(data_shape)}: use the first stage's data section")
  model = build_model(config.model, shape)
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  try:
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = abstract_params(model, shape, device)
    params = checkpoints.restore_params(checkpoints.resolve_step(), target)
  finally:
    checkpoints.close()
  return FrozenStage(model, jax.tree.map(np.asarray, params))
