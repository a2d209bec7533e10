"""A learned prior over a VQ-VAE's codes: a causal transformer over the grid of code indices in
raster order (an autoregressive prior, as the PixelCNN of van den Oord et al., 2017), trained as a
second stage on the codes of a frozen VQ-VAE.

    p(c) = prod_l p(c_l | c_<l),   log p(x) >= log p(x | z_q(c)) + log p(c),   c = codes of x

`VQPrior` answers the one model interface with that bound, so `jaxvae train`, `jaxvae eval` and
`jaxvae sample` serve it as any other model; its config names the first stage's workdir.
"""

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvae.errors import UserError
from jaxvae.models.interface import LogWeights
from jaxvae.models.registry import register
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
  """A trained VQ-VAE and its variables (NumPy arrays), held by `VQPrior` outside its own
  variables: they are constants of its computations, never trained."""

  model: VQVAE
  variables: Any


class VQPrior(nn.Module):
  """The bound `log p(x | z_q) + log p(c)` of a frozen VQ-VAE `stage` with a learned code prior."""

  stage: FrozenStage
  code_prior_width: int = 64
  code_prior_layers: int = 2
  code_prior_heads: int = 4

  @property
  def data_shape(self) -> tuple[int, ...]:
    return self.stage.model.data_shape

  def setup(self):
    self.prior = CausalTransformer(self.stage.model.num_codes,
                                   math.prod(self.stage.model.grid_shape), self.code_prior_width,
                                   self.code_prior_layers, self.code_prior_heads)

  def _stage(self, *args, method):
    return self.stage.model.apply(self.stage.variables, *args, method=method)

  def encode(self, x: jax.Array) -> jax.Array:
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


def vq_prior_defaults() -> ml_collections.ConfigDict:
  """The `model` section of `model.kind='vq_prior'` (without `kind`)."""
  return ml_collections.ConfigDict(dict(
      first_stage_workdir="",  # workdir of the trained vqvae (frozen)
      code_prior_layers=2,  # layers of the causal transformer over codes
      code_prior_width=64,  # its width
      code_prior_heads=4,  # its attention heads
  ))


def _validate(section, config) -> None:
  for key in ("code_prior_layers", "code_prior_width", "code_prior_heads"):
    if not section[key] > 0:
      raise UserError(f"config key 'model.{key}' must be positive, got {section[key]!r}")
  if section.code_prior_width % section.code_prior_heads:
    raise UserError(f"model.code_prior_width={section.code_prior_width} must be divisible by "
                    f"model.code_prior_heads={section.code_prior_heads}")
  if not section.first_stage_workdir:
    raise UserError("model.kind='vq_prior' learns a prior over the codes of a trained VQ-VAE: set "
                    "model.first_stage_workdir to that run's --workdir")


@register("vq_prior", vq_prior_defaults, _validate)
def build_vq_prior(section, context) -> VQPrior:
  """The code prior over the frozen first stage in `section.first_stage_workdir`, which must hold a
  VQ-VAE trained on data of this shape (`context.load_trained` reads it)."""
  workdir = section.first_stage_workdir
  if context.load_trained is None:
    raise UserError("model.kind='vq_prior' loads its first stage: build it with "
                    "jaxvae.runtime.trained.build_model, which can read a workdir")
  config, model, variables = context.load_trained(workdir)
  if not isinstance(model, VQVAE):
    raise UserError(f"model.first_stage_workdir={workdir} holds a model.kind="
                    f"{config.model.kind!r} run; the code prior needs a 'vqvae' run")
  if tuple(model.data_shape) != tuple(context.data_shape):
    raise UserError(f"the first stage in {workdir} was trained on data of shape "
                    f"{tuple(model.data_shape)}, these are {tuple(context.data_shape)}: use the "
                    f"first stage's data section")
  return VQPrior(FrozenStage(model, jax.tree.map(np.asarray, variables)),
                 section.code_prior_width, section.code_prior_layers, section.code_prior_heads)
