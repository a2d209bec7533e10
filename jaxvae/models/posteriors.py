"""Posterior families q(z | x) as small Linen heads on the encoder's features `h [B, F]`, each
registered by name (`model.posterior`).

Every head answers:
- `parameters(h) -> params`, the posterior's parameters: a NamedTuple of `[B, ...]` arrays per
  family (`DiagGaussian(mean, log_var)`, ...), which a model's `posterior_parameters(x)` returns
  and per-example refinement in `jaxvae.eval.posterior` optimizes;
- `sample(params, keys [K, B]) -> (z [K, B, L], log q(z | x) [K, B])`, one reparameterized draw
  per key, so draws do not depend on how samples or examples are batched;
- `mode(params) -> [B, L]`, a representative point (the mean, or the flowed base mean) for
  reconstructions;
- `log_prob(z [..., B', L], params) -> [..., B']` where the density has a closed form (diag,
  full_cov, mixture: `closed_form_density = True`; the VampPrior needs it on pseudo-inputs), or
  where a flow can be inverted (IAF). `density_at_draws` says whether it is right at draws whose
  parameters are frozen (STL and DReG): the mixture's draws are stratified, not independent, and
  a planar flow has no inverse in closed form.
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxvae import distributions as D
from jaxvae.errors import UserError
from jaxvae.models import flows


def draw(sample_fn, keys: jax.Array, *params: jax.Array) -> jax.Array:
  """`sample_fn(keys[k, b], *(p[b] for p in params))` for every (k, b): `[K, B, ...]`."""
  per_example = jax.vmap(sample_fn)
  return jax.vmap(per_example, in_axes=(0,) + (None,) * len(params))(keys, *params)


class DiagGaussian(NamedTuple):
  mean: jax.Array  # [B, L]
  log_var: jax.Array  # [B, L]


class FullCovGaussian(NamedTuple):
  mean: jax.Array  # [B, L]
  scale_tril: jax.Array  # [B, L, L] lower-triangular Cholesky factor


class GaussianMixture(NamedTuple):
  means: jax.Array  # [B, M, L]
  log_vars: jax.Array  # [B, M, L]


class PlanarParams(NamedTuple):
  u: jax.Array  # [B, T, L]
  w: jax.Array  # [B, T, L]
  b: jax.Array  # [B, T]


class Flowed(NamedTuple):
  """A diagonal Gaussian base and the flow's own parameters (`PlanarParams`, or IAF's context
  `[B, H]`)."""

  base: DiagGaussian
  flow: PlanarParams | jax.Array


class Posterior(nn.Module):
  """The posterior interface (see the module docstring); `mode` is the mean for the Gaussians."""

  closed_form_density = False
  density_at_draws = False

  def mode(self, params):
    return params.mean



class DiagGaussianPosterior(Posterior):
  """q(z | x) = N(mean(h), diag exp(log_var(h))) (Kingma & Welling, 2014)."""

  latent_dim: int
  closed_form_density = True
  density_at_draws = True

  def setup(self):
    self.head = nn.Dense(2 * self.latent_dim)

  def parameters(self, h) -> DiagGaussian:
    return DiagGaussian(*jnp.split(self.head(h), 2, axis=-1))

  def sample(self, params: DiagGaussian, keys):
    z = draw(D.diag_gaussian_sample, keys, params.mean, params.log_var)
    return z, D.diag_gaussian_log_prob(z, params.mean, params.log_var)

  def log_prob(self, z, params: DiagGaussian):
    return D.diag_gaussian_log_prob(z, params.mean, params.log_var)


class FullCovGaussianPosterior(Posterior):
  """q(z | x) = N(mean(h), L(h) L(h)^T) with a Cholesky factor from `scale_tril_from_raw`."""

  latent_dim: int
  closed_form_density = True
  density_at_draws = True

  def setup(self):
    self.head = nn.Dense(self.latent_dim + self.latent_dim**2)

  def parameters(self, h) -> FullCovGaussian:
    out = self.head(h)
    mean, raw = out[..., :self.latent_dim], out[..., self.latent_dim:]
    raw = raw.reshape(raw.shape[:-1] + (self.latent_dim, self.latent_dim))
    return FullCovGaussian(mean, D.scale_tril_from_raw(raw))

  def sample(self, params: FullCovGaussian, keys):
    z = draw(D.full_gaussian_sample, keys, params.mean, params.scale_tril)
    return z, D.full_gaussian_log_prob(z, params.mean, params.scale_tril)

  def log_prob(self, z, params: FullCovGaussian):
    return D.full_gaussian_log_prob(z, params.mean, params.scale_tril)


class MixturePosterior(Posterior):
  """q(z | x) = (1/M) sum_m N(mean_m(h), diag exp(log_var_m(h))): M equally weighted components.

  The weights are fixed (uniform) on purpose: then the component index is drawn from a
  parameter-free distribution and `z = mean_m + sigma_m eps` is an exact reparameterization, so the
  gradient of any bound is unbiased. (Learned weights would need a score-function term for the
  discrete choice.) `log q` is the full mixture density, as importance weights require.

  Draws are stratified over the components: of `K` draws per example, the first `K - K % M` take
  component `k % M` (one draw from every component per stratum of `M`), and only the remaining
  `K % M` draw theirs at random. The mean of the log weights over the `K` draws is then still an
  unbiased ELBO estimate, and their mean weight an unbiased estimate of p(x), with lower variance;
  with `K >= M` (`train.num_samples`) every component gets a gradient at every step. This is the
  MISELBO of Kviman et al. (2023) and, with importance weighting, the SIWAE of Morningstar et al.
  (2021). A chunked evaluator draws the same samples as an unchunked one when the chunk size is a
  multiple of `M`.
  """

  latent_dim: int
  num_components: int
  closed_form_density = True

  def setup(self):
    self.head = nn.Dense(2 * self.num_components * self.latent_dim)

  def parameters(self, h) -> GaussianMixture:
    out = self.head(h).reshape(h.shape[:-1] + (self.num_components, 2 * self.latent_dim))
    return GaussianMixture(*jnp.split(out, 2, axis=-1))

  def _logits(self, means):
    return jnp.zeros(self.num_components, means.dtype)  # equal weights

  def sample(self, params: GaussianMixture, keys):
    means, log_vars = params
    logits = self._logits(means)
    strata = keys.shape[0] - keys.shape[0] % self.num_components
    per_example = jax.vmap(  # over examples, for one row of keys and its fixed component
        lambda k, m, v, c: D.mixture_diag_gaussian_sample(k, logits, m, v, c),
        in_axes=(0, 0, 0, None))
    stratified = jax.vmap(per_example, in_axes=(0, None, None, 0))(
        keys[:strata], means, log_vars, jnp.arange(strata) % self.num_components)
    remainder = draw(lambda k, m, v: D.mixture_diag_gaussian_sample(k, logits, m, v),
                     keys[strata:], means, log_vars)
    z = jnp.concatenate([stratified, remainder])  # [K, B, L]
    return z, D.mixture_diag_gaussian_log_prob(z, logits, means, log_vars)

  def mode(self, params: GaussianMixture):
    return D.mixture_diag_gaussian_mean(self._logits(params.means), params.means)

  def log_prob(self, z, params: GaussianMixture):
    return D.mixture_diag_gaussian_log_prob(z, self._logits(params.means), params.means,
                                            params.log_vars)


class FlowPosterior(Posterior):
  """A diagonal Gaussian pushed through `num_flows` steps of a flow (`transform`):
  `log q(z_T) = log q_0(z_0) - sum_t log|det J_t|` (Rezende & Mohamed, 2015)."""

  def sample(self, params: Flowed, keys):
    z0, log_q0 = self.base.sample(params.base, keys)
    z, log_det = self.transform(z0, params.flow)
    return z, log_q0 - log_det

  def mode(self, params: Flowed):
    return self.transform(params.base.mean, params.flow)[0]


class PlanarFlowPosterior(FlowPosterior):
  """Planar flows with amortized parameters `(u_t, w_t, b_t)(h)` (Rezende & Mohamed, 2015)."""

  latent_dim: int
  num_flows: int

  def setup(self):
    self.base = DiagGaussianPosterior(self.latent_dim)
    self.flow_head = nn.Dense(self.num_flows * (2 * self.latent_dim + 1))

  def parameters(self, h) -> Flowed:
    out = self.flow_head(h).reshape(h.shape[:-1] + (self.num_flows, 2 * self.latent_dim + 1))
    return Flowed(self.base.parameters(h), PlanarParams(
        out[..., :self.latent_dim], out[..., self.latent_dim:-1], out[..., -1]))

  def transform(self, z, flow: PlanarParams):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t in range(self.num_flows):
      z, ld = flows.planar_flow(z, flow.u[..., t, :], flow.w[..., t, :], flow.b[..., t])
      log_det = log_det + ld
    return z, log_det


class IAFPosterior(FlowPosterior):
  """Inverse autoregressive flow steps (Kingma et al., 2016), each a MADE of `hidden_sizes` fed
  the encoder context `[B, H]`; the order of the latent dimensions is reversed between steps (a
  volume-preserving permutation)."""

  latent_dim: int
  num_flows: int
  hidden_sizes: tuple[int, ...] = (64, 64)
  density_at_draws = True

  def setup(self):
    self.base = DiagGaussianPosterior(self.latent_dim)
    self.context = nn.Dense(self.hidden_sizes[0])
    self.steps = [flows.AutoregressiveNet(self.hidden_sizes) for _ in range(self.num_flows)]

  def parameters(self, h) -> Flowed:
    return Flowed(self.base.parameters(h), self.context(h))

  def transform(self, z, context):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    context = jnp.broadcast_to(context, z.shape[:-1] + (self.hidden_sizes[0],))
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t, net in enumerate(self.steps):
      if t:
        z = z[..., ::-1]
      z, ld = flows.iaf_step(z, *net(z, context))
      log_det = log_det + ld
    return z, log_det

  def log_prob(self, z, params: Flowed):
    """`log q(z_T)` at points `z [..., B, L]`: each step inverted, last first. An IAF step
    `y_i = sigma_i z_i + (1 - sigma_i) m_i`, with `(m_i, sigma_i)` functions of `z_<i`, is inverted
    one dimension at a time: `z_i = (y_i - (1 - sigma_i) m_i) / sigma_i` once `z_<i` is known."""
    context = jnp.broadcast_to(params.flow, z.shape[:-1] + (self.hidden_sizes[0],))
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t in reversed(range(self.num_flows)):
      y, net = z, self.steps[t]
      for i in range(self.latent_dim):
        mean, gate_logit = net(z, context)
        sigma = jax.nn.sigmoid(gate_logit[..., i])
        z = z.at[..., i].set((y[..., i] - (1 - sigma) * mean[..., i]) / sigma)
      log_det = log_det + flows.iaf_step(z, *net(z, context))[1]
      if t:
        z = z[..., ::-1]
    return self.base.log_prob(z, params.base) - log_det


POSTERIORS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    "diag": lambda section: DiagGaussianPosterior(section.latent_dim),
    "full_cov": lambda section: FullCovGaussianPosterior(section.latent_dim),
    "mixture": lambda section: MixturePosterior(section.latent_dim, section.num_components),
    "planar_flow": lambda section: PlanarFlowPosterior(section.latent_dim, section.num_flows),
    "iaf": lambda section: IAFPosterior(section.latent_dim, section.num_flows),
}


def make_posterior(section: ml_collections.ConfigDict) -> nn.Module:
  """The posterior head named by `section.posterior` (with `latent_dim`, `num_flows`,
  `num_components` from the same section)."""
  if section.posterior not in POSTERIORS:
    raise UserError(f"model.posterior={section.posterior!r}; choose one of {', '.join(POSTERIORS)}")
  return POSTERIORS[section.posterior](section)
