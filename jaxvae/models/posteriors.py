"""Posterior families q(z | x) as small Linen heads on the encoder's features `h [B, F]`.

Every head answers:
- `__call__(h, keys [K, B]) -> (z [K, B, L], log q(z | x) [K, B])`, one reparameterized draw per
  key, so draws do not depend on how samples or examples are batched;
- `mode(h) -> [B, L]`, a representative point (the mean, or the flowed base mean) for
  reconstructions;
- `log_prob(z [..., B', L], h [B', F]) -> [..., B']` where the density is available in closed form
  (diag, full_cov, mixture); the VampPrior uses it on pseudo-inputs.
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


class DiagGaussianPosterior(nn.Module):
  """q(z | x) = N(mean(h), diag exp(log_var(h))) (Kingma & Welling, 2014)."""

  latent_dim: int

  def setup(self):
    self.head = nn.Dense(2 * self.latent_dim)

  def parameters(self, h):
    return tuple(jnp.split(self.head(h), 2, axis=-1))  # mean, log_var: [B, L]

  def __call__(self, h, keys):
    mean, log_var = self.parameters(h)
    z = draw(D.diag_gaussian_sample, keys, mean, log_var)
    return z, D.diag_gaussian_log_prob(z, mean, log_var)

  def mode(self, h):
    return self.parameters(h)[0]

  def log_prob(self, z, h):
    mean, log_var = self.parameters(h)
    return D.diag_gaussian_log_prob(z, mean, log_var)


class FullCovGaussianPosterior(nn.Module):
  """q(z | x) = N(mean(h), L(h) L(h)^T) with a Cholesky factor from `scale_tril_from_raw`."""

  latent_dim: int

  def setup(self):
    self.head = nn.Dense(self.latent_dim + self.latent_dim**2)

  def parameters(self, h):
    out = self.head(h)
    mean, raw = out[..., :self.latent_dim], out[..., self.latent_dim:]
    raw = raw.reshape(raw.shape[:-1] + (self.latent_dim, self.latent_dim))
    return mean, D.scale_tril_from_raw(raw)

  def __call__(self, h, keys):
    mean, scale_tril = self.parameters(h)
    z = draw(D.full_gaussian_sample, keys, mean, scale_tril)
    return z, D.full_gaussian_log_prob(z, mean, scale_tril)

  def mode(self, h):
    return self.parameters(h)[0]

  def log_prob(self, z, h):
    mean, scale_tril = self.parameters(h)
    return D.full_gaussian_log_prob(z, mean, scale_tril)


class MixturePosterior(nn.Module):
  """q(z | x) = (1/M) sum_m N(mean_m(h), diag exp(log_var_m(h))): M equally weighted components.

  The weights are fixed (uniform) on purpose: then the component index is drawn from a
  parameter-free distribution and `z = mean_m + sigma_m eps` is an exact reparameterization, so the
  gradient of any bound is unbiased. (Learned weights would need a score-function term for the
  discrete choice.) `log q` is the full mixture density, as importance weights require.
  """

  latent_dim: int
  num_components: int

  def setup(self):
    self.head = nn.Dense(2 * self.num_components * self.latent_dim)

  def parameters(self, h):
    out = self.head(h).reshape(h.shape[:-1] + (self.num_components, 2 * self.latent_dim))
    means, log_vars = jnp.split(out, 2, axis=-1)  # [B, M, L] each
    return jnp.zeros(self.num_components, h.dtype), means, log_vars

  def __call__(self, h, keys):
    logits, means, log_vars = self.parameters(h)
    z = draw(lambda k, m, v: D.mixture_diag_gaussian_sample(k, logits, m, v), keys, means, log_vars)
    return z, D.mixture_diag_gaussian_log_prob(z, logits, means, log_vars)

  def mode(self, h):
    logits, means, _ = self.parameters(h)
    return D.mixture_diag_gaussian_mean(logits, means)

  def log_prob(self, z, h):
    logits, means, log_vars = self.parameters(h)
    return D.mixture_diag_gaussian_log_prob(z, logits, means, log_vars)


class PlanarFlowPosterior(nn.Module):
  """A diagonal Gaussian pushed through `num_flows` planar flows with amortized parameters
  `(u_t, w_t, b_t)(h)` (Rezende & Mohamed, 2015): `log q = log q_0(z_0) - sum_t log|det J_t|`."""

  latent_dim: int
  num_flows: int

  def setup(self):
    self.base = DiagGaussianPosterior(self.latent_dim)
    self.flow_head = nn.Dense(self.num_flows * (2 * self.latent_dim + 1))

  def flow_parameters(self, h):
    out = self.flow_head(h).reshape(h.shape[:-1] + (self.num_flows, 2 * self.latent_dim + 1))
    return out[..., :self.latent_dim], out[..., self.latent_dim:-1], out[..., -1]  # u, w, b

  def transform(self, z, h):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    u, w, b = self.flow_parameters(h)
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t in range(self.num_flows):
      z, ld = flows.planar_flow(z, u[..., t, :], w[..., t, :], b[..., t])
      log_det = log_det + ld
    return z, log_det

  def __call__(self, h, keys):
    z0, log_q0 = self.base(h, keys)
    z, log_det = self.transform(z0, h)
    return z, log_q0 - log_det

  def mode(self, h):
    return self.transform(self.base.mode(h), h)[0]


class IAFPosterior(nn.Module):
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

  def transform(self, z, h):
    """`(z_T, sum_t log|det J_t|)` for base points `z [..., B, L]`."""
    context = jnp.broadcast_to(self.context(h), z.shape[:-1] + (self.hidden_sizes[0],))
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    for t, net in enumerate(self.steps):
      if t:
        z = z[..., ::-1]
      z, ld = flows.iaf_step(z, *net(z, context))
      log_det = log_det + ld
    return z, log_det

  def __call__(self, h, keys):
    z0, log_q0 = self.base(h, keys)
    z, log_det = self.transform(z0, h)
    return z, log_q0 - log_det

  def mode(self, h):
    return self.transform(self.base.mode(h), h)[0]


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
