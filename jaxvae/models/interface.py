"""The one model interface, the optional capabilities a model may declare, and its collections.

Every model is a Flax (Linen) module that answers `Model`: its log importance weights, samples and
reconstructions. The trainer, the evaluator, the image grids and the sampler use only these, and
ask `has(model, CAPABILITY)` before they use anything more; they never check a model's kind or
class. `check_model` (called by `jaxvae.models.build_model` and on user models) names whatever a
model lacks. See docs/architecture.md.

Variables live in collections:
- `params`: trained by gradient;
- `metrics` (`METRICS`): scalars the model writes in training (when the trainer makes the
  collection mutable) and the trainer logs, e.g. a hierarchy's `kl_layer_<l>`;
- `losses` (`LOSSES`): `[B]` per-example terms the training loss adds to the negative objective,
  outside the bound (e.g. the VQ-VAE's commitment term);
- any other collection the model creates at init is model state: variables not trained by
  gradient (e.g. the VQ-VAE's codebook statistics), which the model updates in training by
  writing them (the trainer applies it with them mutable). They carry no optimizer state, are
  replicated over devices, and are saved and restored with the parameters.
"""

import enum
from typing import Any, NamedTuple, Protocol, runtime_checkable

import chex
import jax

from jaxvae.errors import UserError

PARAMS = "params"
METRICS = "metrics"
LOSSES = "losses"
TRANSIENT = (METRICS, LOSSES)  # written in training, never saved


class LogWeights(NamedTuple):
  """The `[K, B]` terms of `log w = log p(x | z) + log p(z) - log q(z | x)` for `z_kb ~ q(z | x_b)`
  (sums over layers for hierarchies). Bounds, estimators and metrics are functions of these arrays
  (`jaxvae.losses`), so they never special-case a model."""

  log_likelihood: jax.Array  # log p(x_b | z_kb)
  log_prior: jax.Array  # log p(z_kb)
  log_posterior: jax.Array  # log q(z_kb | x_b)

  @property
  def values(self) -> jax.Array:
    """`[K, B]` log importance weights `log p(x, z) - log q(z | x)`."""
    return self.log_likelihood + self.log_prior - self.log_posterior

  @property
  def kl(self) -> jax.Array:
    """`[K, B]` single-sample estimates `log q(z | x) - log p(z)` of KL(q(z | x) || p(z))."""
    return self.log_posterior - self.log_prior


@runtime_checkable
class Model(Protocol):
  """What every model answers. Images are `[B, *data_shape]`, labels `[B]` int or None."""

  data_shape: tuple[int, ...]

  def log_weights(self, x: jax.Array, keys: jax.Array,
                  labels: jax.Array | None = None) -> LogWeights:
    """`LogWeights` of `[K, B]` fields for one draw `z_kb ~ q(z | x_b)` per key `keys [K, B]`."""

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None) -> jax.Array:
    """`[num, *data_shape]` means of p(x | z) for `num` draws z ~ p(z)."""

  def reconstruct(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B, *data_shape]` mean of p(x | z) at a representative z of q(z | x)."""


class LatentVector(Protocol):
  """`LATENT_VECTOR`: one latent vector `z [B, L]`, for interpolation and traversal grids."""

  latent_dim: int

  def latent_code(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B, L]`: the mode of q(z | x) (what `reconstruct` decodes)."""

  def decode_latent(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B, *data_shape]`: the mean of p(x | z) for `z [B, L]`."""


class TemperedSampling(Protocol):
  """`TEMPERATURE`: `sample` takes a temperature T >= 0 that scales the prior's noise (z = T eps
  for a N(0, I) prior; T = 0 decodes the prior mean; Kingma & Dhariwal, 2018). T may be a traced
  scalar: the grid of samples at several temperatures vmaps over it."""

  def sample(self, key: jax.Array, num: int, labels: jax.Array | None = None,
             temperature: float = 1.0) -> jax.Array:
    """`[num, *data_shape]` means of p(x | z) for z drawn at `temperature`."""


class ExplicitPosterior(Protocol):
  """`POSTERIOR_PARAMETERS`: q(z | x) has parameters (a pytree of float arrays with a leading
  batch axis) that `log_weights` can be given instead of the encoder's: per-example posterior
  refinement (the amortization gap) optimizes them."""

  def posterior_parameters(self, x: jax.Array, labels: jax.Array | None = None) -> Any:
    """The encoder's parameters of q(z | x), `[B, ...]` leaves (a NamedTuple per family)."""

  def log_weights(self, x: jax.Array, keys: jax.Array, labels: jax.Array | None = None,
                  posterior: Any = None) -> LogWeights:
    """As `Model.log_weights`, drawing from q with the parameters `posterior` when given."""


class FactorizedKL(Protocol):
  """`FACTORIZED_KL`: a diagonal Gaussian q(z | x) and a N(0, I) prior, so the KL splits into one
  closed-form term per latent dimension (active units, posterior collapse)."""

  def kl_per_dimension(self, x: jax.Array,
                       labels: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """`(E_q[z | x] [B, L], KL(q(z_d | x) || N(0, 1)) [B, L])`."""


class Reparameterized(Protocol):
  """`REPARAMETERIZED`: q's density can be evaluated at given draws, with its parameters frozen by
  the caller, the path through the draws kept: what STL and DReG need (`jaxvae.losses.estimators`).
  Draws are a pytree (`[K, B, L]` for one latent vector, one array per layer for a hierarchy)."""

  def log_weights_and_latents(self, x: jax.Array, keys: jax.Array,
                              labels: jax.Array | None = None) -> tuple[LogWeights, Any]:
    """`(log_weights(x, keys, labels), z)`, z the reparameterized draws the weights are of."""

  def posterior_log_prob(self, x: jax.Array, z: Any,
                         labels: jax.Array | None = None) -> jax.Array:
    """`[K, B]` log q(z | x) at the draws `z` (every layer's term, flows' log-determinants)."""


class SeparateInference(Protocol):
  """`SEPARATE_INFERENCE`: q's parameters are the top-level parameter subtrees named by
  `inference_modules`, shared with no part of p; objectives that give the inference network
  another gradient than the generative one (DReG, PIWAE) need the split."""

  inference_modules: tuple[str, ...]


class ExactObjective(Protocol):
  """`EXACT_ELBO`: the ELBO by enumeration over a discrete z (`train.objective='exact_elbo'`)."""

  def exact_elbo(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """`[B]` the exact ELBO."""


class Conditional(Protocol):
  """`LABELS`: p(x | z, y) and q(z | x, y) depend on a class label y in [0, num_classes); every
  call that takes `labels` needs them (sampling cycles through the classes when they are None)."""

  num_classes: int


class LatentGroups(Protocol):
  """`LATENT_GROUPS`: a top-down hierarchy of `num_groups` latent groups (group 0 at the top)
  whose reconstructions can take the top n groups from q and the rest from the prior: what each
  depth encodes (Child, 2021, Figure 4)."""

  num_groups: int

  def reconstruct_from_groups(self, x: jax.Array, key: jax.Array, num_posterior: int,
                              temperature: float = 1.0) -> jax.Array:
    """`[B, *data_shape]` means of p(x | z) for `x [B, ...]`: groups `g < num_posterior` at q's
    means, the rest drawn from the prior at `temperature` with `key`; `num_posterior=0` is
    `sample(key, B, temperature=temperature)`, `num_posterior=num_groups` is `reconstruct(x)`.
    `num_posterior` may be a traced int: the grid vmaps over it."""


class Capability(enum.Enum):
  """What a model may declare in its `capabilities` property, each with the interface it needs
  (the attributes `check_model` verifies). Two write collections instead of methods:
  `TRAINING_PENALTY` writes `[B]` terms to `losses`; `LAYER_KL` writes `kl_layer_<l>` to
  `metrics` (per-layer KLs of a hierarchy, bottom layer 0)."""

  LATENT_VECTOR = ("latent_dim", "latent_code", "decode_latent")
  TEMPERATURE = ("sample",)
  POSTERIOR_PARAMETERS = ("posterior_parameters",)
  FACTORIZED_KL = ("kl_per_dimension",)
  EXACT_ELBO = ("exact_elbo",)
  REPARAMETERIZED = ("log_weights_and_latents", "posterior_log_prob")
  SEPARATE_INFERENCE = ("inference_modules",)
  LABELS = ("num_classes",)
  TRAINING_PENALTY = ()
  LAYER_KL = ()
  LATENT_GROUPS = ("num_groups", "reconstruct_from_groups")

  @property
  def attributes(self) -> tuple[str, ...]:
    return self.value


LATENT_VECTOR = Capability.LATENT_VECTOR
TEMPERATURE = Capability.TEMPERATURE
POSTERIOR_PARAMETERS = Capability.POSTERIOR_PARAMETERS
FACTORIZED_KL = Capability.FACTORIZED_KL
EXACT_ELBO = Capability.EXACT_ELBO
REPARAMETERIZED = Capability.REPARAMETERIZED
SEPARATE_INFERENCE = Capability.SEPARATE_INFERENCE
LABELS = Capability.LABELS
TRAINING_PENALTY = Capability.TRAINING_PENALTY
LAYER_KL = Capability.LAYER_KL
LATENT_GROUPS = Capability.LATENT_GROUPS


def capabilities(model) -> frozenset[Capability]:
  """The capabilities `model` declares (its `capabilities` property; none when it has none)."""
  return frozenset(getattr(model, "capabilities", ()))


def has(model, capability: Capability) -> bool:
  """Whether `model` declares `capability`."""
  return capability in capabilities(model)


def check_log_weights(model, log_weights: LogWeights, keys: jax.Array) -> None:
  """Raises `UserError` unless `log_weights`' three fields are `[K, B]` like `keys` (shapes are
  static: free under `jit`)."""
  try:
    chex.assert_shape(list(log_weights), tuple(keys.shape))
  except AssertionError as e:
    raise UserError(f"{type(model).__name__}.log_weights must return LogWeights of [K, B] = "
                    f"{tuple(keys.shape)} arrays (one per key): {str(e).splitlines()[0]}") from None


def labels_for(model, labels: jax.Array | None) -> jax.Array | None:
  """`labels` for a conditional model (capability `LABELS`), None for any other."""
  return labels if has(model, LABELS) else None


def check_model(model) -> None:
  """Raises `UserError` naming the first method or attribute `model` lacks: those of `Model`, and
  those of each capability it declares."""
  name = type(model).__name__
  needed = [("the model interface", a) for a in ("data_shape", "log_weights", "sample",
                                                   "reconstruct")]
  declared = getattr(model, "capabilities", ())
  if not all(isinstance(c, Capability) for c in declared):
    raise UserError(f"{name}.capabilities must hold jaxvae.models.interface.Capability members, "
                    f"got {tuple(declared)!r}")
  needed += [(f"capability {c.name}", a) for c in declared for a in c.attributes]
  for what, attribute in needed:
    if not hasattr(model, attribute):
      raise UserError(f"{name} lacks '{attribute}', which {what} needs (see "
                      f"jaxvae/models/interface.py)")
