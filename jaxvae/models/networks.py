"""Networks shared by the models: MLPs and convolutional ResNets, as encoders and decoders.

Encoders map images `[B, *data_shape]` (and an optional conditioning vector `[B, C]`) to features
`[B, F]`; posterior heads turn the features into q's parameters. Decoders map latents `[..., L]`
(any leading axes, e.g. `[K, B]`) and the optional conditioning to per-pixel likelihood parameters
`[..., D, P]`, `D = prod(data_shape)` pixels in row-major `(H, W, C)` order, `P` parameters each.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae.errors import UserError


def activation_fn(name: str):
  """The activation named `name` ('tanh', 'relu', 'elu', 'gelu', 'swish')."""
  return getattr(nn, name)


def _with_condition(h: jax.Array, condition: jax.Array | None) -> jax.Array:
  """`concat([h, condition])` on the last axis, broadcasting `condition [B, C]` to `h [..., B, F]`."""
  if condition is None:
    return h
  condition = jnp.broadcast_to(condition, h.shape[:-1] + condition.shape[-1:]).astype(h.dtype)
  return jnp.concatenate([h, condition], axis=-1)


class MLP(nn.Module):
  """`[..., D_in] -> [..., out_size]`: Dense layers of `hidden_sizes` with `activation`, then a linear
  one whose bias starts at `bias_init` (a scalar, or `out_size` values)."""

  hidden_sizes: Sequence[int]
  out_size: int
  activation: str = "tanh"
  bias_init: float | tuple[float, ...] = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for size in self.hidden_sizes:
      x = activation_fn(self.activation)(nn.Dense(size)(x))
    bias_init = nn.initializers.constant(jnp.asarray(self.bias_init))
    return nn.Dense(self.out_size, bias_init=bias_init)(x)


class MLPEncoder(nn.Module):
  """`x [B, *shape]`, `condition [B, C] | None` -> `[B, hidden_sizes[-1]]`: an MLP on the flat image.

  The condition (e.g. a one-hot label) is concatenated to the flattened input (Sohn et al., 2015).
  """

  hidden_sizes: Sequence[int]
  activation: str = "tanh"

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    h = _with_condition(x.reshape(x.shape[0], -1), condition)
    for size in self.hidden_sizes:
      h = activation_fn(self.activation)(nn.Dense(size)(h))
    return h


class MLPDecoder(nn.Module):
  """`z [..., L]`, `condition [B, C] | None` -> `[..., D, P]`: an MLP, then a linear layer to D * P.

  `bias_init` is the initial output bias, one value or `D * P` (Burda et al., 2016 start each
  pixel's Bernoulli logit at the logit of its mean over the training set).
  """

  hidden_sizes: Sequence[int]
  data_shape: tuple[int, ...]
  params_per_dim: int
  activation: str = "tanh"
  bias_init: float | tuple[float, ...] = 0.0

  @nn.compact
  def __call__(self, z: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    num_dims = math.prod(self.data_shape)
    out = MLP(self.hidden_sizes, num_dims * self.params_per_dim, self.activation,
              self.bias_init)(_with_condition(z, condition))
    return out.reshape(out.shape[:-1] + (num_dims, self.params_per_dim))


class ResidualBlock(nn.Module):
  """`h + conv3x3(act(conv3x3(act(h))))` at constant channels (He et al., 2016, pre-activation)."""

  activation: str = "relu"

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    act = activation_fn(self.activation)
    channels = h.shape[-1]
    r = nn.Conv(channels, (3, 3))(act(h))
    r = nn.Conv(channels, (3, 3), kernel_init=nn.initializers.zeros)(act(r))
    return h + r


class DownStages(nn.Module):
  """`x [B, H, W, C]` -> `[B, H / 2^S, W / 2^S, channels[-1]]`, before its activation: a stem conv,
  then per stage a stride-2 conv to `channels[i]` and `blocks_per_stage` residual blocks."""

  channels: Sequence[int]
  blocks_per_stage: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = activation_fn(self.activation)
    h = nn.Conv(self.channels[0], (3, 3))(x)
    for width in self.channels:
      h = nn.Conv(width, (4, 4), strides=(2, 2))(act(h))
      for _ in range(self.blocks_per_stage):
        h = ResidualBlock(self.activation)(h)
    return h


class UpStages(nn.Module):
  """`h [B, H / 2^S, W / 2^S, channels[-1]]` -> `[B, H, W, out_channels]`: per stage (channels in
  reverse order) residual blocks, a 2x nearest upsampling and a conv; then a conv to `out_channels`
  whose bias starts at `bias_init`."""

  channels: Sequence[int]
  blocks_per_stage: int
  out_channels: int
  activation: str = "relu"
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    act = activation_fn(self.activation)
    for width in reversed(self.channels):
      for _ in range(self.blocks_per_stage):
        h = ResidualBlock(self.activation)(h)
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = nn.Conv(width, (3, 3))(act(h))
    return nn.Conv(self.out_channels, (3, 3),
                   bias_init=nn.initializers.constant(self.bias_init))(act(h))


class ResNetEncoder(nn.Module):
  """`x [B, H, W, C]` -> `[B, F]`: `DownStages`, then a Dense layer of `features` on the flattened
  map.

  Each stage halves the resolution: 28x28 with 2 stages ends at 7x7, 32x32 with 3 at 4x4, 64x64
  with 4 at 4x4. The condition is concatenated to the flattened map before the last Dense layer.
  """

  channels: Sequence[int]
  blocks_per_stage: int
  features: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    act = activation_fn(self.activation)
    h = DownStages(self.channels, self.blocks_per_stage, self.activation)(x)
    h = _with_condition(act(h).reshape(h.shape[0], -1), condition)
    return act(nn.Dense(self.features)(h))


class ResNetDecoder(nn.Module):
  """`z [..., L]` -> `[..., D, P]`: Dense to a `(H / 2^S, W / 2^S, channels[-1])` map, then
  `UpStages` to `C * P` channels, read as `[H * W * C, P]`.
  """

  channels: Sequence[int]
  blocks_per_stage: int
  data_shape: tuple[int, int, int]
  params_per_dim: int
  activation: str = "relu"
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, z: jax.Array, condition: jax.Array | None = None) -> jax.Array:
    height, width, colours = self.data_shape
    scale = 2 ** len(self.channels)
    lead = z.shape[:-1]
    h = nn.Dense((height // scale) * (width // scale) * self.channels[-1])(
        _with_condition(z, condition))
    h = h.reshape((-1, height // scale, width // scale, self.channels[-1]))
    out = UpStages(self.channels, self.blocks_per_stage, colours * self.params_per_dim,
                   self.activation, self.bias_init)(h)
    return out.reshape(lead + (height * width * colours, self.params_per_dim))


ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "swish")
NETWORKS = ("mlp", "resnet")


def network_defaults() -> ml_collections.ConfigDict:
  """The network keys of a model section."""
  return ml_collections.ConfigDict(dict(
      network="mlp",  # mlp | resnet (conv; image sides divisible by 2^len(channels))
      hidden_sizes=(256, 256),  # mlp: encoder layers (the decoder reverses them); resnet:
      #   hidden_sizes[-1] is the width of the encoder's last Dense layer
      activation="tanh",  # tanh | relu | elu | gelu | swish
      channels=(32, 64),  # resnet: channels per stage; each stage halves the resolution
      blocks_per_stage=1,  # resnet: residual blocks per stage
  ))


def check_conv_shape(channels: Sequence[int], data_shape: tuple[int, ...], what: str) -> None:
  """Raises `UserError` unless `data_shape` is `[H, W, C]` with H and W divisible by
  `2^len(channels)` (what `len(channels)` halving stages need); `what` names the setting."""
  scale = 2 ** len(channels)
  if len(data_shape) != 3 or data_shape[0] % scale or data_shape[1] % scale:
    raise UserError(f"{what} with {len(channels)} stages (model.channels={tuple(channels)}) needs "
                    f"[H, W, C] images with H and W divisible by {scale}; the data are "
                    f"{tuple(data_shape)}: use fewer stages or model.network='mlp'")


def make_encoder_decoder(section: ml_collections.ConfigDict, data_shape: tuple[int, ...],
                         outputs_per_dim: int,
                         output_bias: float | tuple[float, ...]) -> tuple[nn.Module, nn.Module]:
  """The encoder and decoder named by `section.network` ('mlp' or 'resnet'; `hidden_sizes`,
  `channels`, `blocks_per_stage`, `activation` from the same section); the decoder emits
  `outputs_per_dim` values per data dimension, with initial output bias `output_bias`."""
  if section.network == "mlp":
    hidden = tuple(section.hidden_sizes)
    return (MLPEncoder(hidden, section.activation),
            MLPDecoder(hidden[::-1], tuple(data_shape), outputs_per_dim, section.activation,
                       output_bias))
  check_conv_shape(section.channels, data_shape, "model.network='resnet'")
  channels = tuple(section.channels)
  return (ResNetEncoder(channels, section.blocks_per_stage, section.hidden_sizes[-1],
                        section.activation),
          ResNetDecoder(channels, section.blocks_per_stage, tuple(data_shape), outputs_per_dim,
                        section.activation, output_bias))
