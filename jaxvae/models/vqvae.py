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

from jaxvae.models.interface import LogWeights
from jaxvae.models.likelihoods import make_likelihood
from jaxvae.models.networks import DownStages, UpStages, activation_fn
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

  Quantizer options are those of `VectorQuantizer`; likelihood options those of `VAE`.
  """

  data_shape: tuple[int, int, int]
  num_codes: int = 64
  code_dim: int = 8
  channels: tuple[int, ...] = (32,)
  blocks_per_stage: int = 1
  activation: str = "relu"
  likelihood: str = "bernoulli"
  likelihood_scale: float = 0.0
  num_mixtures: int = 5
  num_bits: int = 8
  output_bias: float = 0.0
  commitment_cost: float = 0.25
  codebook_update: str = "ema"
  codebook_decay: float = 0.99
  codebook_epsilon: float = 1e-5
  codebook_init: str = "kmeans"
  dead_code_steps: int = 100
  restart_dead_codes: bool = True
  cosine_codes: bool = False
  chunk_size: int | None = None

  @property
  def grid_shape(self) -> tuple[int, int]:
    """`(h, w)`: the latent grid."""
    scale = 2 ** len(self.channels)
    return self.data_shape[0] // scale, self.data_shape[1] // scale

  def setup(self):
    self.likelihood_head = make_likelihood(self.likelihood, math.prod(self.data_shape),
                                           self.likelihood_scale, self.num_mixtures, self.num_bits)
    self.encoder = ConvEncoder(self.channels, self.blocks_per_stage, self.code_dim, self.activation)
    self.decoder = ConvDecoder(self.channels, self.blocks_per_stage, self.data_shape[-1],
                               self.likelihood_head.params_per_dim, self.activation,
                               self.output_bias)
    self.quantizer = VectorQuantizer(
        self.num_codes, self.code_dim, self.commitment_cost, self.codebook_update,
        self.codebook_decay, self.codebook_epsilon, self.codebook_init,
        dead_code_steps=self.dead_code_steps, restart=self.restart_dead_codes,
        cosine=self.cosine_codes, chunk_size=self.chunk_size)

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
    initialization and restarts in training. `penalty [B]` holds the commitment (and codebook)
    terms, which only the training loss adds.
    """
    del labels
    z_q, codes, penalty = self.quantizer(self.encoder(x), keys.reshape(-1)[0])
    log_likelihood = self.likelihood_head.log_prob(x.reshape(x.shape[0], -1), self.decoder(z_q))
    log_prior = jnp.full_like(log_likelihood,
                              -math.prod(codes.shape[1:]) * math.log(self.num_codes))
    shape = keys.shape[:1] + log_likelihood.shape
    return LogWeights(log_likelihood=jnp.broadcast_to(log_likelihood, shape),
                      log_prior=jnp.broadcast_to(log_prior, shape),
                      log_posterior=jnp.zeros(shape), penalty=penalty)

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
