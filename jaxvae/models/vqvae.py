"""The VQ-VAE (van den Oord et al., 2017): a convolutional encoder to a grid of D-vectors, each
quantized to the nearest of N codes (`jaxvae.models.vq_quantizer`), and a convolutional decoder.

It answers the one model interface: q(z | x) is a point mass on the nearest codes, so all K
samples coincide and the log weight is the bound `log p(x) >= log p(x | z_q) + log p(z_q)`, with
the uniform prior `p(z_q) = N^-(h w)` here (`jaxvae.models.code_prior` learns one).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import LOSSES, LogWeights
from jaxvae.models.likelihoods import likelihood_defaults, make_likelihood, validate_likelihood
from jaxvae.models.networks import DownStages, UpStages, activation_fn, check_conv_shape
from jaxvae.models.registry import register
from jaxvae.models.vq_quantizer import VectorQuantizer


class ConvEncoder(nn.Module):
  """`x [B, H, W, C]` -> `[B, H / 2^S, W / 2^S, code_dim]`: `DownStages`, then a 1x1 conv to
  `code_dim`."""

  channels: tuple[int, ...]
  blocks_per_stage: int
  code_dim: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = DownStages(self.channels, self.blocks_per_stage, self.activation)(x)
    return nn.Conv(self.code_dim, (1, 1))(activation_fn(self.activation)(h))


class ConvDecoder(nn.Module):
  """`z_q [B, h, w, code_dim]` -> likelihood parameters `[B, H * W * C, P]`: a conv to
  `channels[-1]`, then `UpStages` to `C * P` channels."""

  channels: tuple[int, ...]
  blocks_per_stage: int
  colours: int
  params_per_dim: int
  activation: str = "relu"
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = nn.Conv(self.channels[-1], (3, 3))(z)
    out = UpStages(self.channels, self.blocks_per_stage, self.colours * self.params_per_dim,
                   self.activation, self.bias_init)(h)
    return out.reshape(out.shape[0], -1, self.params_per_dim)


class VQVAE(nn.Module):
  """Images `[B, H, W, C]` (H, W divisible by `2^len(channels)`) <-> codes `[B, h, w]` in [0, N).

  `quantizer` is a `VectorQuantizer`; `likelihood_head` a family of `jaxvae.models.likelihoods`.
  """

  data_shape: tuple[int, int, int]
  quantizer: VectorQuantizer
  likelihood_head: nn.Module
  channels: tuple[int, ...] = (32,)
  blocks_per_stage: int = 1
  activation: str = "relu"
  output_bias: float = 0.0
  capabilities = frozenset({interface.TRAINING_PENALTY})

  @property
  def num_codes(self) -> int:
    return self.quantizer.num_codes

  @property
  def grid_shape(self) -> tuple[int, int]:
    """`(h, w)`: the latent grid."""
    scale = 2 ** len(self.channels)
    return self.data_shape[0] // scale, self.data_shape[1] // scale

  def setup(self):
    self.encoder = ConvEncoder(self.channels, self.blocks_per_stage, self.quantizer.code_dim,
                               self.activation)
    self.decoder = ConvDecoder(self.channels, self.blocks_per_stage, self.data_shape[-1],
                               self.likelihood_head.params_per_dim, self.activation,
                               self.output_bias)

  def encode(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`x [B, H, W, C]` -> the nearest codes `[B, h, w]` int32 (labels are ignored)."""
    del labels
    return self.quantizer(self.encoder(x), jax.random.key(0))[1]

  def decode(self, codes: jax.Array) -> jax.Array:
    """`codes [B, h, w]` -> likelihood parameters `[B, H * W * C, P]`."""
    return self.decoder(self.quantizer.codewords(codes))

  def log_likelihood(self, x: jax.Array, codes: jax.Array) -> jax.Array:
    """`log p(x | z_q(codes))`: `[B, H, W, C], [B, h, w] -> [B]`."""
    return self.likelihood_head.log_prob(x.reshape(x.shape[0], -1), self.decode(codes))

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`log p(x | z_q) + log p(z_q)` under the uniform prior, for each of the `[K, B]` `keys`.

    `z_q` is deterministic, so the K rows are equal; `keys[0, 0]` draws the quantizer's data
    initialization and restarts in training. The commitment (and codebook) terms `[B]` go to the
    `losses` collection in training: only the training loss adds them.
    """
    del labels
    z_q, codes, penalty = self.quantizer(self.encoder(x), keys.reshape(-1)[0])
    if self.is_mutable_collection(LOSSES) and not self.is_initializing():
      self.put_variable(LOSSES, "penalty", penalty)
    log_likelihood = self.likelihood_head.log_prob(x.reshape(x.shape[0], -1), self.decoder(z_q))
    log_prior = jnp.full_like(log_likelihood,
                              -math.prod(codes.shape[1:]) * math.log(self.num_codes))
    shape = keys.shape[:1] + log_likelihood.shape
    return LogWeights(log_likelihood=jnp.broadcast_to(log_likelihood, shape),
                      log_prior=jnp.broadcast_to(log_prior, shape),
                      log_posterior=jnp.zeros(shape))

  def mean(self, codes: jax.Array) -> jax.Array:
    """Mean of p(x | z_q(codes)): `[B, h, w] -> [B, H, W, C]`."""
    return self.likelihood_head.mean(self.decode(codes)).reshape(
        codes.shape[:1] + tuple(self.data_shape))

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """Means of p(x | z_q) for codes drawn from the uniform prior: `[num, H, W, C]`."""
    del labels
    return self.mean(jax.random.randint(key, (num,) + self.grid_shape, 0, self.num_codes))

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z_q(x)): `[B, H, W, C]`."""
    return self.mean(self.encode(x, labels))

  def __call__(self, x: jax.Array, keys: jax.Array, labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def vqvae_defaults():
  """The `model` section of `model.kind='vqvae'` (without `kind`)."""
  section = ml_collections.ConfigDict(dict(
      channels=(32, 64),  # channels per stage; each stage halves the resolution
      blocks_per_stage=1,  # residual blocks per stage
      activation="relu",
      num_codes=64,  # codebook size
      code_dim=8,  # size of each code vector
      commitment_cost=0.25,  # beta of the commitment term |z_e - sg(e)|^2
      codebook_update="ema",  # ema (moving averages) | loss (codebook loss term)
      codebook_decay=0.99,  # ema: decay of the moving averages
      codebook_epsilon=1e-5,  # ema: Laplace smoothing of the code counts
      codebook_init="kmeans",  # ema: random | sample | kmeans (first batch)
      dead_code_steps=100,  # a code unused for this many steps is dead
      restart_dead_codes=True,  # ema: re-seed dead codes from encoder outputs
      cosine_codes=False,  # L2-normalized codes and encoder outputs
      codebook_chunk_size=0,  # nearest-code search over chunks of this many codes (memory
      #   [B * h * w, chunk], for large codebooks); 0 = the whole codebook at once
  ))
  section.update(likelihood_defaults())
  return section


def _validate(section, config) -> None:
  validate_likelihood(section, config)
  for key, choices in (("codebook_update", ("ema", "loss")),
                       ("codebook_init", ("random", "sample", "kmeans"))):
    if section[key] not in choices:
      raise UserError(f"config key 'model.{key}' is {section[key]!r}; choose one of "
                      f"{', '.join(choices)}")
  for key in ("num_codes", "code_dim", "dead_code_steps", "codebook_epsilon", "blocks_per_stage"):
    if not section[key] > 0:
      raise UserError(f"config key 'model.{key}' must be positive, got {section[key]!r}")
  if not section.channels or any(not isinstance(c, int) or c <= 0 for c in section.channels):
    raise UserError(f"config key 'model.channels' must be a non-empty tuple of positive ints, "
                    f"got {section.channels!r}")
  if section.commitment_cost < 0 or not 0 < section.codebook_decay < 1:
    raise UserError(f"config keys 'model.commitment_cost' (>= 0) and 'model.codebook_decay' (in "
                    f"(0, 1)) are {section.commitment_cost!r} and {section.codebook_decay!r}")
  chunk = section.codebook_chunk_size
  if chunk < 0 or (chunk and section.num_codes % chunk):
    raise UserError(f"config key 'model.codebook_chunk_size' must be 0 (whole codebook) or divide "
                    f"model.num_codes={section.num_codes}, got {chunk}")
  if section.codebook_update == "loss" and (
      section.restart_dead_codes or section.codebook_init != "random"):
    raise UserError("model.codebook_update='loss' trains the codebook by gradient; data "
                    "initialization and dead-code restarts need 'ema': set "
                    "model.codebook_init='random' and model.restart_dead_codes=False, or use 'ema'")


@register("vqvae", vqvae_defaults, _validate)
def build_vqvae(section, context) -> VQVAE:
  check_conv_shape(section.channels, context.data_shape, "model.kind='vqvae'")
  quantizer = VectorQuantizer(
      section.num_codes, section.code_dim, **{k: section[k] for k in (
          "commitment_cost", "codebook_update", "codebook_decay", "codebook_epsilon",
          "codebook_init", "dead_code_steps", "restart_dead_codes", "cosine_codes",
          "codebook_chunk_size")})
  return VQVAE(data_shape=tuple(context.data_shape), quantizer=quantizer,
               likelihood_head=make_likelihood(section, math.prod(context.data_shape)),
               channels=tuple(section.channels), blocks_per_stage=section.blocks_per_stage,
               activation=section.activation, output_bias=section.output_bias)
