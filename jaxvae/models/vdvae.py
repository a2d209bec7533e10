"""A very deep VAE (VDVAE, Child, 2021): a bottom-up encoder and a top-down decoder of residual
bottleneck blocks, with a group of latents in every decoder block.

Architecture, from block strings of comma-separated tokens (VDVAE's `hps.py` notation):
- encoder, e.g. `"32x11,32d2,16x6,..."`: `RxN` is N residual blocks at resolution R, `RdF` one
  block at R followed by an F x F average pool. The last activation at each resolution is kept.
- decoder, e.g. `"1x1,4m1,4x2,8m4,..."`: `RxN` is N top-down blocks at R, `RmS` one block at R
  whose input adds the state at resolution S upsampled (nearest) to R. Each block holds a group
  `z_g [R, R, latent_channels]`, groups numbered from the top (g = 0 is the first block).

A top-down block at resolution R with state `h` and encoder activation `a`:
`p(z_g | z_<g) = N(mu_p, sigma_p^2)` and a state update `h_p` from `prior(h)`;
`q(z_g | z_<g, x) = N(mu_q, sigma_q^2)` from `posterior(concat(h, a))`; then
`h <- resnet(h + h_p + proj(z_g))`. The state at the image resolution gives p(x | z) through a
per-channel gain and bias and a 1x1 convolution (the likelihood is any registered family; the
published models use the discretized logistic mixture, here without PixelCNN++'s channel coupling).
Every bottleneck block is `1x1 -> 3x3 -> 3x3 -> 1x1` convolutions (1x1 only at R <= 2) with a GELU
before each, `width * bottleneck_ratio` channels inside; the last convolution of each residual
branch (and of `proj`) starts scaled by `sqrt(1 / number of blocks)`, the prior's starts at zero,
so that the initial network is close to the identity however deep it is.

`log w = log p(x | z) + sum_g [log p(z_g | z_<g) - log q(z_g | z_<g, x)]`; in training group g's
mean `log q - log p` goes to the metrics as `kl_layer_<G - 1 - g>` (bottom group, next to x, 0).
Densities are evaluated in float32 whatever the compute dtype.

`remat=True` rematerializes every encoder and decoder block (`flax.linen.remat`, which saves
nothing inside a block): the backward pass keeps only each block's inputs and recomputes the
block's convolutions, one more forward pass (about a third more compute) for activation memory that
grows with the number of blocks times one state instead of times the dozen tensors inside a block.
Policies that save matmul outputs (`dots_saveable`) would save nothing here: a block is
convolutions, not `dot_general`s.
"""

import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae import distributions as D
from jaxvae.errors import UserError
from jaxvae.models import interface
from jaxvae.models.interface import METRICS, LogWeights
from jaxvae.models.likelihoods import likelihood_defaults, make_likelihood, validate_likelihood
from jaxvae.models.registry import register

Blocks = tuple[tuple[int, int], ...]  # (resolution, rate): d factor or m resolution, 0 for x


def parse_blocks(spec: str, letter: str, key: str) -> Blocks:
  """A block string -> one `(resolution, rate)` per block: `RxN` gives N `(R, 0)`, `R<letter>F`
  one `(R, F)` (`letter` is 'd' for the encoder, 'm' for the decoder)."""
  blocks = []
  for token in spec.split(","):
    match = re.fullmatch(rf"(\d+)(?:([x{letter}])(\d+))?", token.strip())
    if match is None or int(match[1]) <= 0 or (match[3] is not None and int(match[3]) <= 0):
      other, example = (("RdF (one block, then downsample by F)", "32x11,32d2,16x6")
                        if letter == "d" else
                        ("RmS (one block, upsampling from resolution S)", "1x1,4m1,4x2"))
      raise UserError(f"config key 'model.{key}' has the token {token!r}; tokens are RxN (N blocks "
                      f"at resolution R) or {other}, e.g. {example}")
    resolution = int(match[1])
    if match[2] == "x":
      blocks += [(resolution, 0)] * int(match[3])
    else:
      blocks.append((resolution, int(match[3]) if match[2] else 0))
  return tuple(blocks)


def parse_widths(spec: str, width: int) -> tuple[tuple[int, int], ...]:
  """`"R:W,..."` -> `((R, W), ...)`: per-resolution widths overriding `width` ('' for none)."""
  if not spec:
    return ()
  try:
    pairs = tuple(tuple(int(v) for v in item.split(":")) for item in spec.split(","))
    if any(len(p) != 2 or min(p) <= 0 for p in pairs):
      raise ValueError
  except ValueError:
    raise UserError(f"config key 'model.resolution_widths' is {spec!r}; give comma-separated "
                    f"RESOLUTION:WIDTH pairs, e.g. '32:256,16:384', or '' for model.width={width} "
                    f"everywhere") from None
  return pairs


def check_architecture(encoder: Blocks, decoder: Blocks, image_size: int) -> None:
  """Raises `UserError` unless the encoder starts at `image_size` and each block sits at the
  resolution its input has, and the decoder ends at `image_size` with each block at a resolution
  the encoder has and each upsampling from a resolution already built."""
  resolution, seen = image_size, {image_size}
  for res, down in encoder:
    if res != resolution:
      raise UserError(f"model.encoder_blocks: a block at resolution {res} follows one whose output "
                      f"is {resolution}x{resolution} (images are {image_size}x{image_size}); "
                      f"start at {image_size} and downsample with RdF tokens")
    if down:
      if resolution % down:
        raise UserError(f"model.encoder_blocks: {res}d{down} does not divide {res}")
      resolution //= down
      seen.add(resolution)
  built = set()
  for res, mixin in decoder:
    if res not in seen:
      raise UserError(f"model.decoder_blocks: resolution {res} has no encoder activation (the "
                      f"encoder reaches {', '.join(map(str, sorted(seen)))}); match the two strings")
    if mixin and (mixin not in built or res % mixin):
      why = "no earlier block builds" if mixin not in built else f"does not divide {res}"
      raise UserError(f"model.decoder_blocks: {res}m{mixin} upsamples from resolution {mixin}, "
                      f"which {why}")
    built.add(res)
  if decoder[-1][0] != image_size:
    raise UserError(f"model.decoder_blocks must end at the image resolution {image_size}, not "
                    f"{decoder[-1][0]}")


def _conv(features: int, kernel: int, scale: float = 1.0, name: str | None = None) -> nn.Conv:
  """A convolution with PyTorch's default initialization (variance `1 / (3 fan_in)`), its weights
  scaled by `scale` (0: zeros), zero bias."""
  init = (nn.initializers.zeros if scale == 0 else
          nn.initializers.variance_scaling(scale**2 / 3, "fan_in", "uniform"))
  return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_init=init, name=name)


def _fit_channels(x: jax.Array, width: int) -> jax.Array:
  """`[..., C] -> [..., width]`: zero-padded or truncated channels."""
  if x.shape[-1] >= width:
    return x[..., :width]
  return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])])


class Bottleneck(nn.Module):
  """`[N, R, R, C] -> [N, R / down_rate, R / down_rate, out]`: GELU and convolutions
  `1x1 -> 3x3 -> 3x3 -> 1x1` through `middle` channels (1x1 only without `use_3x3`), plus the input
  when `residual`, then a `down_rate` average pool. `last_scale` scales the last convolution's
  initial weights."""

  middle: int
  out: int
  residual: bool = False
  use_3x3: bool = True
  down_rate: int = 0
  last_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = 3 if self.use_3x3 else 1
    h = _conv(self.middle, 1)(nn.gelu(x, approximate=False))
    h = _conv(self.middle, kernel)(nn.gelu(h, approximate=False))
    h = _conv(self.middle, kernel)(nn.gelu(h, approximate=False))
    h = _conv(self.out, 1, self.last_scale)(nn.gelu(h, approximate=False))
    out = x + h if self.residual else h
    if self.down_rate:
      out = nn.avg_pool(out, (self.down_rate,) * 2, (self.down_rate,) * 2)
    return out


def _split_gaussian(out: jax.Array, channels: int) -> tuple[jax.Array, jax.Array]:
  """`[N, R, R, >= 2 Z]` -> `(mean, log std)`, each `[N, R * R * Z]` in float32."""
  flat = lambda a: a.reshape(a.shape[0], -1).astype(jnp.float32)  # noqa: E731
  return flat(out[..., :channels]), flat(out[..., channels:2 * channels])


def _log_prob(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
  return D.diag_gaussian_log_prob(z, mean, 2.0 * log_std)


class TopDownBlock(nn.Module):
  """One decoder block at resolution R with `width` channels and a latent group of
  `latent_channels` channels (see the module docstring)."""

  width: int
  middle: int
  latent_channels: int
  use_3x3: bool
  num_blocks: int  # decoder blocks in all, for the initial scales

  @nn.compact
  def __call__(self, h: jax.Array, activation: jax.Array | None, eps: jax.Array,
               temperature: jax.Array, from_posterior: jax.Array = True,
               posterior_noise: jax.Array = 1.0
               ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """`h [N, R, R, W]`, the encoder's `activation [N, R, R, W]` (None: z from the prior),
    `eps [N, R * R * Z]` float32 noise -> `(h, z [N, R * R * Z], log q [N], log p [N])`.

    `z = mu_q + sigma_q * posterior_noise * eps` where `from_posterior` (`[]` bool) and there is an
    activation, else `mu_p + sigma_p * temperature * eps`; log q and log p are of the posterior's
    draw (zero without an activation)."""
    z_channels, scale = self.latent_channels, math.sqrt(1.0 / self.num_blocks)
    prior = Bottleneck(self.middle, 2 * z_channels + self.width, use_3x3=self.use_3x3,
                       last_scale=0.0, name="prior")(h)
    p_mean, p_log_std = _split_gaussian(prior, z_channels)
    z = p_mean + jnp.exp(p_log_std) * temperature * eps
    log_q = log_p = jnp.zeros(z.shape[:1], jnp.float32)
    if activation is not None:
      posterior = Bottleneck(self.middle, 2 * z_channels, use_3x3=self.use_3x3, name="posterior")(
          jnp.concatenate([h, activation], axis=-1))
      q_mean, q_log_std = _split_gaussian(posterior, z_channels)
      z_q = q_mean + jnp.exp(q_log_std) * posterior_noise * eps
      log_q, log_p = _log_prob(z_q, q_mean, q_log_std), _log_prob(z_q, p_mean, p_log_std)
      z = jnp.where(from_posterior, z_q, z)
    h = h + prior[..., 2 * z_channels:]
    z_image = z.reshape(h.shape[:3] + (-1,)).astype(h.dtype)
    h = h + _conv(self.width, 1, scale, name="z_proj")(z_image)
    h = Bottleneck(self.middle, self.width, residual=True, use_3x3=self.use_3x3, last_scale=scale,
                   name="resnet")(h)
    return h, z, log_q, log_p


class VDVAE(nn.Module):
  """Images `[B, R, R, C]`; see the module docstring. Blocks are parsed block strings
  (`parse_blocks`), `widths` per-resolution overrides of `width` (`parse_widths`)."""

  data_shape: tuple[int, ...]
  encoder_blocks: Blocks
  decoder_blocks: Blocks
  likelihood_head: nn.Module
  width: int = 64
  widths: tuple[tuple[int, int], ...] = ()
  bottleneck_ratio: float = 0.25
  latent_channels: int = 8
  no_bias_above: int = 64
  output_bias: float = 0.0
  remat: bool = False

  capabilities = frozenset({interface.LAYER_KL, interface.TEMPERATURE, interface.LATENT_GROUPS})

  def width_at(self, resolution: int) -> int:
    return dict(self.widths).get(resolution, self.width)

  @property
  def num_groups(self) -> int:
    """G: latent groups, one per decoder block."""
    return len(self.decoder_blocks)

  def group_sizes(self) -> tuple[int, ...]:
    """Latent dimensions `R * R * latent_channels` of each group, top first."""
    return tuple(res * res * self.latent_channels for res, _ in self.decoder_blocks)

  def setup(self):
    image_size = self.data_shape[0]
    middle = lambda res: max(1, int(self.width_at(res) * self.bottleneck_ratio))  # noqa: E731
    self.in_conv = _conv(self.width_at(image_size), 3)
    bottleneck = nn.remat(Bottleneck) if self.remat else Bottleneck
    self.encoder = [bottleneck(middle(res), self.width_at(res), residual=True, use_3x3=res > 2,
                               down_rate=down, last_scale=math.sqrt(1 / len(self.encoder_blocks)))
                    for res, down in self.encoder_blocks]
    top_down = nn.remat(TopDownBlock) if self.remat else TopDownBlock
    self.decoder = [top_down(self.width_at(res), middle(res), self.latent_channels, res > 2,
                             len(self.decoder_blocks)) for res, _ in self.decoder_blocks]
    resolutions = sorted({res for res, _ in self.decoder_blocks if res <= self.no_bias_above})
    self.biases = {str(res): self.param(f"bias_{res}", nn.initializers.zeros,
                                        (1, res, res, self.width_at(res)))
                   for res in resolutions}
    self.gain = self.param("gain", nn.initializers.ones, (self.width_at(image_size),))
    self.shift = self.param("shift", nn.initializers.zeros, (self.width_at(image_size),))
    channels, per_dim = self.data_shape[-1], self.likelihood_head.params_per_dim
    self.out_conv = nn.Conv(channels * per_dim, (1, 1), kernel_init=_conv(1, 1).kernel_init,
                            bias_init=nn.initializers.constant(self.output_bias))

  def encode(self, x: jax.Array) -> dict[int, jax.Array]:
    """The encoder's activations `{R: [B, R, R, W_R]}` for images `x [B, *data_shape]`."""
    h = self.in_conv((2.0 * x - 1.0).astype(self.gain.dtype))
    activations = {h.shape[1]: h}
    for block in self.encoder:
      h = block(h)
      h = _fit_channels(h, self.width_at(h.shape[1]))
      activations[h.shape[1]] = h
    return activations

  def top_down(self, activations: dict[int, jax.Array] | None, keys: jax.Array,
               num_posterior: int | jax.Array, temperature=1.0, posterior_means: bool = False
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The decoder for `keys [N]` (one per example): groups `g < num_posterior` (an int, or a
    traced one: one compilation for every n) from q (needs the `activations`, leading axis N; at
    q's means with `posterior_means`), the rest from the prior at `temperature` (a float or one per
    group, top first). Returns `(likelihood parameters [N, D, P], log q [G, N], log p [G, N])`."""
    temperatures = (tuple(temperature) if isinstance(temperature, (tuple, list))
                    else (temperature,) * self.num_groups)
    n = keys.shape[0]
    states, log_q, log_p = {}, [], []
    for group, (block, (res, mixin), size) in enumerate(
        zip(self.decoder, self.decoder_blocks, self.group_sizes())):
      width = self.width_at(res)
      if res in states:
        h = states[res]
      elif str(res) in self.biases:
        h = jnp.broadcast_to(self.biases[str(res)], (n, res, res, width))
      else:
        h = jnp.zeros((n, res, res, width), self.gain.dtype)
      if mixin:
        below = _fit_channels(states[mixin], width)
        h = h + jnp.repeat(jnp.repeat(below, res // mixin, axis=1), res // mixin, axis=2)
      eps = jax.vmap(lambda k, g=group, s=size: jax.random.normal(jax.random.fold_in(k, g), (s,)))(
          keys)
      h, _, q, p = block(h, None if activations is None else activations[res], eps,
                         jnp.asarray(temperatures[group], jnp.float32), group < num_posterior,
                         jnp.float32(0.0 if posterior_means else 1.0))
      states[res], log_q, log_p = h, log_q + [q], log_p + [p]
    image = states[self.data_shape[0]] * self.gain + self.shift
    out = self.out_conv(image).astype(jnp.float32)
    return (out.reshape(n, math.prod(self.data_shape), self.likelihood_head.params_per_dim),
            jnp.stack(log_q), jnp.stack(log_p))

  def _repeat(self, activations: dict[int, jax.Array], k: int) -> dict[int, jax.Array]:
    """`{R: [B, ...]}` -> `{R: [k * B, ...]}`, sample-major (row `j * B + b` is example b)."""
    return {res: jnp.broadcast_to(a, (k,) + a.shape).reshape((-1,) + a.shape[1:])
            for res, a in activations.items()}

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`[K, B]` terms of log w for a draw of every group with `keys [K, B]`; in training each
    group's mean KL goes to the metrics as `kl_layer_<l>` (bottom group 0)."""
    log_weights, layer_kl = self.layer_log_weights(x, keys)
    if self.is_mutable_collection(METRICS):
      for group, kl in enumerate(jnp.mean(layer_kl, axis=(1, 2))):
        self.put_variable(METRICS, f"kl_layer_{self.num_groups - 1 - group}", kl)
    return log_weights

  def layer_log_weights(self, x: jax.Array, keys: jax.Array) -> tuple[LogWeights, jax.Array]:
    """`(LogWeights [K, B], per-group terms log q - log p [G, K, B])`, groups top first."""
    k, b = keys.shape
    activations = self._repeat(self.encode(x), k)
    out, log_q, log_p = self.top_down(activations, keys.reshape(-1), self.num_groups, 1.0)
    x_flat = x.reshape(b, -1).astype(jnp.float32)
    log_likelihood = self.likelihood_head.log_prob(x_flat, out.reshape((k, b) + out.shape[1:]))
    log_q, log_p = log_q.reshape(-1, k, b), log_p.reshape(-1, k, b)
    return (LogWeights(log_likelihood=log_likelihood, log_prior=log_p.sum(0),
                       log_posterior=log_q.sum(0)), log_q - log_p)

  def _mean(self, out: jax.Array) -> jax.Array:
    return self.likelihood_head.mean(out).reshape((-1,) + tuple(self.data_shape))

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None,
             temperature=1.0) -> jax.Array:
    """`[num, *data_shape]` means of p(x | z) for ancestral draws of every group from the prior,
    its noise scaled by `temperature` (a float, or one per group, top first)."""
    out, _, _ = self.top_down(None, jax.random.split(key, num), 0, temperature)
    return self._mean(out)

  def reconstruct_from_groups(self, x: jax.Array, key: jax.Array, num_posterior: int,
                              temperature=1.0) -> jax.Array:
    """`[B, *data_shape]`: the top `num_posterior` groups at q's means, the rest drawn from the
    prior at `temperature` (what the first groups encode: VDVAE's Figure 4)."""
    keys = jax.random.split(key, x.shape[0])
    out, _, _ = self.top_down(self.encode(x), keys, num_posterior, temperature,
                              posterior_means=True)
    return self._mean(out)

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Mean of p(x | z) with every group at q's mean (along the path of means)."""
    return self.reconstruct_from_groups(x, jax.random.key(0), self.num_groups)

  def __call__(self, x: jax.Array, keys: jax.Array,
               labels: jax.Array | None = None) -> LogWeights:
    return self.log_weights(x, keys, labels)


def vdvae_defaults() -> ml_collections.ConfigDict:
  """The `model` section of `model.kind='vdvae'` (without `kind`): a small hierarchy for 8x8
  images; `configs/*_vdvae.py` set the published ones."""
  section = ml_collections.ConfigDict(dict(
      encoder_blocks="8x2,8d2,4x2,4d4,1x2",  # RxN: N blocks at R; RdF: one, then downsample by F
      decoder_blocks="1x1,4m1,4x2,8m4,8x2",  # RxN: N blocks at R; RmS: one, upsampling from S
      width=64,  # channels of the residual stream
      resolution_widths="",  # per-resolution overrides 'R:W,...', e.g. '32:256'; '' = none
      bottleneck_ratio=0.25,  # channels inside a block / width
      latent_channels=8,  # channels of each block's latent group z [R, R, latent_channels]
      no_bias_above=64,  # learned initial decoder state at resolutions up to this; zeros above
      remat=False,  # rematerialize each block in the backward pass (less memory, ~1/3 more compute)
  ))
  section.update(likelihood_defaults())
  return section


# VDVAE's published models (its `hps.py`; batch = per-GPU batch x GPUs: 2 for CIFAR-10, 32 else).
# Every model: bottleneck 0.25, 16 latent channels, 10 logistics, AdamW with betas (0.9, 0.9),
# weight decay 0.01, 100 warm-up steps.
PUBLISHED = {
    "cifar10": dict(
        encoder_blocks="32x11,32d2,16x6,16d2,8x6,8d2,4x3,4d4,1x3",
        decoder_blocks="1x1,4m1,4x2,8m4,8x5,16m8,16x10,32m16,32x21",
        width=384, batch_size=32, learning_rate=2e-4, clip=200.0, skip=400.0, ema=0.9999),
    "imagenet32": dict(
        encoder_blocks="32x15,32d2,16x9,16d2,8x8,8d2,4x6,4d4,1x6",
        decoder_blocks="1x2,4m1,4x4,8m4,8x9,16m8,16x19,32m16,32x40",
        width=512, batch_size=256, learning_rate=1.5e-4, clip=200.0, skip=300.0, ema=0.999),
    "imagenet64": dict(
        encoder_blocks="64x11,64d2,32x20,32d2,16x9,16d2,8x8,8d2,4x7,4d4,1x5",
        decoder_blocks="1x2,4m1,4x3,8m4,8x7,16m8,16x15,32m16,32x31,64m32,64x12",
        width=512, batch_size=128, learning_rate=1.5e-4, clip=220.0, skip=380.0, ema=0.999),
    "ffhq256": dict(
        encoder_blocks=("256x3,256d2,128x8,128d2,64x12,64d2,32x17,32d2,16x7,16d2,8x5,8d2,4x5,"
                        "4d4,1x4"),
        decoder_blocks="1x2,4m1,4x3,8m4,8x4,16m8,16x9,32m16,32x21,64m32,64x13,128m64,128x7,256m128",
        width=512, batch_size=32, learning_rate=1.5e-4, clip=130.0, skip=180.0, ema=0.999),
}


def apply_published(config: ml_collections.ConfigDict, name: str, num_dims: int) -> None:
  """Sets `config`'s model and optimization to VDVAE's published model `name` (a key of
  `PUBLISHED`) for images of `num_dims` dimensions (H W C): the architecture, the discretized
  logistic mixture, AdamW with warm-up, clipping, update skipping and the EMA of `hps.py`;
  evaluation by the test ELBO and the importance-sampled log p(x) at K = 100 (K = 1000 would take
  days on a test set of these models).

  VDVAE's loss is nats per dimension, jaxvae's nats per example: the gradient is `num_dims` times
  larger, so the clipping and skipping thresholds are `hps.py`'s times `num_dims` (Adam's updates
  do not change with the loss's scale). Unlike VDVAE, a run whose updates keep being skipped (its
  fixed threshold fell below a drifted gradient norm, openai/vdvae#25, or the loss went NaN) rolls
  back to its last checkpoint with a halved learning rate, up to 3 times, instead of stalling;
  `train.skip_grad_norm=0, train.skip_grad_norm_sigmas=6` replaces the fixed threshold by one that
  follows the gradient norm's running statistics."""
  hps = PUBLISHED[name]
  model, train = config.model, config.train
  model.encoder_blocks, model.decoder_blocks = hps["encoder_blocks"], hps["decoder_blocks"]
  model.width, model.latent_channels, model.bottleneck_ratio = hps["width"], 16, 0.25
  model.likelihood, model.num_mixtures = "discretized_logistic", 10
  train.batch_size, train.learning_rate = hps["batch_size"], hps["learning_rate"]
  train.optimizer, train.weight_decay = "adamw", 0.01
  train.adam_b1, train.adam_b2 = 0.9, 0.9
  train.warmup_steps = 100
  train.clip_grad_norm, train.skip_grad_norm = hps["clip"] * num_dims, hps["skip"] * num_dims
  train.ema_decay = hps["ema"]
  train.max_rollbacks = 3  # a run stalled by skips rolls back with a halved learning rate
  train.num_steps = 1_000_000
  train.log_every, train.checkpoint_every = 1_000, 10_000
  config.eval.num_samples, config.eval.nested_num_samples = 100, (1, 10)
  config.eval.chunk_size, config.eval.batch_size = 10, 32

def _validate(section, config) -> None:
  encoder = parse_blocks(section.encoder_blocks, "d", "encoder_blocks")
  decoder = parse_blocks(section.decoder_blocks, "m", "decoder_blocks")
  parse_widths(section.resolution_widths, section.width)
  for key in ("width", "latent_channels"):
    if section[key] <= 0:
      raise UserError(f"config key 'model.{key}' must be positive, got {section[key]!r}")
  if not 0 < section.bottleneck_ratio <= 4:
    raise UserError(f"config key 'model.bottleneck_ratio' must be in (0, 4], got "
                    f"{section.bottleneck_ratio!r}")
  del encoder, decoder  # Checked against the image size when the model is built.
  validate_likelihood(section, config)


@register("vdvae", vdvae_defaults, _validate)
def build_vdvae(section, context) -> VDVAE:
  shape = tuple(context.data_shape)
  if len(shape) != 3 or shape[0] != shape[1]:
    raise UserError(f"model.kind='vdvae' needs square images [R, R, C], got data of shape {shape}")
  encoder = parse_blocks(section.encoder_blocks, "d", "encoder_blocks")
  decoder = parse_blocks(section.decoder_blocks, "m", "decoder_blocks")
  check_architecture(encoder, decoder, shape[0])
  return VDVAE(
      data_shape=shape, encoder_blocks=encoder, decoder_blocks=decoder,
      likelihood_head=make_likelihood(section, math.prod(shape)), width=section.width,
      widths=parse_widths(section.resolution_widths, section.width),
      bottleneck_ratio=section.bottleneck_ratio, latent_channels=section.latent_channels,
      no_bias_above=section.no_bias_above, output_bias=section.output_bias, remat=section.remat)
