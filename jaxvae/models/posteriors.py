"""Posterior families q(z | x) as small Linen heads on the encoder's features `h [B, F]`.

Every head answers:
- `parameters(h) -> params`, a tuple of `[B, ...]` arrays: the posterior's parameters, which the
  model's `encode(x)` returns (`(mean, log_var)` for the diagonal Gaussian, so that diagnostics and
  per-example refinement in `jaxvae.eval.posterior` apply to it);
- `sample(params, keys [K, B]) -> (z [K, B, L], log q(z | x) [K, B])`, one reparameterized draw
  per key, so draws do not depend on how samples or examples are batched;
- `mode(params) -> [B, L]`, a representative point (the mean, or the flowed base mean) for
  reconstructions;
- `log_prob(z [..., B', L], params) -> [..., B']` where the density has a closed form (diag,
  full_cov, mixture); the VampPrior uses it on pseudo-inputs.
`__call__(h, keys)` is `sample(parameters(h), keys)`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import distributions as D
from jaxvae.models import flows


def draw(sample_fn, keys: jax.Array, *params: jax.Array) -> jax.Array:
  """`sample_fn(keys[k, b], *(p[b] for p in params))` for every (k, b): `[K, B, ...]`."""
  per_example = jax.vmap(sample_fn)
  return jax.vmap(per_example, in_axes=(0,) + (None,) * len(params))(keys, *params)


class Posterior(nn.Module):
  """The posterior interface: `parameters(h)`, `sample(params, keys) -> (z, log q(z))`,
  `log_prob(z, params)` and `mode(params)` (the mean, for the Gaussians); calling it samples."""

  def mode(self, params):
    return params[0]

  def __call__(self, h, keys):
    return self.sample(self.parameters(h), keys)


class DiagGaussianPosterior(Posterior):
  """q(z | x) = N(mean(h), diag exp(log_var(h))) (Kingma & Welling, 2014)."""

  latent_dim: int

  def setup(self):
    self.head = nn.Dense(2 * self.latent_dim)

  def parameters(self, h):
    return tuple(jnp.split(self.head(h), 2, axis=-1))  # mean, log_var: [B, L]

  def sample(self, params, keys):
    mean, log_var = params
    z = draw(D.diag_gaussian_sample, keys, mean, log_var)
    return z, D.diag_gaussian_log_prob(z, mean, log_var)

  def log_prob(self, z, params):
    return D.diag_gaussian_log_prob(z, *params)


class FullCovGaussianPosterior(Posterior):
  """q(z | x) = N(mean(h), L(h) L(h)^T) with a Cholesky factor from `scale_tril_from_raw`."""

  latent_dim: int

  def setup(self):
    self.head = nn.Dense(self.latent_dim + self.latent_dim**2)

  def parameters(self, h):
    out = self.head(h)
    mean, raw = out[..., :self.latent_dim], out[..., self.latent_dim:]
    raw = raw.reshape(raw.shape[:-1] + (self.latent_dim, self.latent_dim))
    return mean, D.scale_tril_from_raw(raw)

  def sample(self, params, keys):
    mean, scale_tril = params
    z = draw(D.full_gaussian_sample, keys, mean, scale_tril)
    return z, D.full_gaussian_log_prob(z, mean, scale_tril)

  def log_prob(self, z, params):
    return D.full_gaussian_log_prob(z, *params)


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

  def setup(self):
    self.head = nn.Dense(2 * self.num_components * self.latent_dim)

  def parameters(self, h):
    out = self.head(h).reshape(h.shape[:-1] + (self.num_components, 2 * self.latent_dim))
    return tuple(jnp.split(out, 2, axis=-1))  # means, log_vars: [B, M, L] each

  def _logits(self, means):
    return jnp.zeros(self.num_components, means.dtype)  # equal weights

  def sample(self, params, keys):
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

  def mode(self, params):
    return D.mixture_diag_gaussian_mean(self._logits(params[0]), params[0])

  def log_prob(self, z, params):
    means, log_vars = params
    return D.mixture_diag_gaussian_log_prob(z, self._logits(means), means, log_vars)


class PlanarFlowPosterior(Posterior):
  """A diagonal Gaussian pushed through `num_flows` planar flows with amortized parameters
  `(u_t, w_t, b_t)(h)` (Rezende & Mohamed, 2015): `log q = log q_0(z_0) - sum_t log|det J_t|`."""

  latent_dim: int
  num_flows: int

  def setup(self):
    self.base = DiagGaussianPosterior(self.latent_dim)
    self.flow_head = nn.Dense(self.num_flows * (2 * self.latent_dim + 1))

  def parameters(self, h):
    """`(mean, log_var, u [B, T, L], w [B, T, L], b [B, T])`."""
    out = self.flow_head(h).reshape(h.shape[:-1] + (self.num_flows, 2 * self.latent_dim + 1))
    return self.base.parameters(h) + (
        out[..., :self.latent_dim], out[..., self.latent_dim:-1], out[..., -1])

  def transform(self, z, params):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    _, _, u, w, b = params
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t in range(self.num_flows):
      z, ld = flows.planar_flow(z, u[..., t, :], w[..., t, :], b[..., t])
      log_det = log_det + ld
    return z, log_det

  def sample(self, params, keys):
    z0, log_q0 = self.base.sample(params[:2], keys)
    z, log_det = self.transform(z0, params)
    return z, log_q0 - log_det

  def mode(self, params):
    return self.transform(params[0], params)[0]


class IAFPosterior(Posterior):
  """A diagonal Gaussian followed by `num_flows` inverse autoregressive flow steps (Kingma et al.,
  2016), each a MADE of `hidden_sizes` fed the encoder context; the order of the latent dimensions
  is reversed between steps (a volume-preserving permutation)."""

  latent_dim: int
  num_flows: int
  hidden_sizes: tuple[int, ...] = (64, 64)

  def setup(self):
    self.base = DiagGaussianPosterior(self.latent_dim)
    self.context = nn.Dense(self.hidden_sizes[0])
    self.steps = [flows.AutoregressiveNet(self.hidden_sizes) for _ in range(self.num_flows)]

  def parameters(self, h):
    """`(mean, log_var, context [B, H])`."""
    return self.base.parameters(h) + (self.context(h),)

  def transform(self, z, params):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    context = jnp.broadcast_to(params[2], z.shape[:-1] + (self.hidden_sizes[0],))
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t, net in enumerate(self.steps):
      if t:
        z = z[..., ::-1]
      z, ld = flows.iaf_step(z, *net(z, context))
      log_det = log_det + ld
    return z, log_det

  def sample(self, params, keys):
    z0, log_q0 = self.base.sample(params[:2], keys)
    z, log_det = self.transform(z0, params)
    return z, log_q0 - log_det

  def mode(self, params):
    return self.transform(params[0], params)[0]


def make_posterior(name: str, latent_dim: int, num_flows: int, num_components: int) -> nn.Module:
  """The posterior head named by `model.posterior`."""
  if name == "diag":
    return DiagGaussianPosterior(latent_dim)
  if name == "full_cov":
    return FullCovGaussianPosterior(latent_dim)
  if name == "mixture":
    return MixturePosterior(latent_dim, num_components)
  if name == "planar_flow":
    return PlanarFlowPosterior(latent_dim, num_flows)
  if name == "iaf":
    return IAFPosterior(latent_dim, num_flows)
  raise ValueError(f"unknown posterior {name!r}")
