"""A linear-Gaussian latent-variable model whose every quantity is analytic: a testbed for bounds,
estimators and diagnostics (not registered as a config kind: it models no image data).

    p(z) = N(0, I_d),  p(x | z) = N(W z + b, s^2 I_D),  q(z | x) = N(A x + c, diag exp(2 l))

so p(x) = N(b, W W^T + s^2 I) and p(z | x) = N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^-1.
Parameters: `decoder` (W, b) and `encoder` (A, c, l), with separate inference parameters.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvae import distributions as D
from jaxvae.models import interface
from jaxvae.models.interface import LogWeights


class LinearGaussian(nn.Module):
  """Data `x [B, D]`, latents `z [K, B, d]`; `noise` is s."""

  data_shape: tuple[int, ...]
  latent_dim: int = 2
  noise: float = 1.0
  capabilities = frozenset({interface.REPARAMETERIZED, interface.SEPARATE_INFERENCE})
  inference_modules = ("encoder",)

  def setup(self):
    self.decoder = nn.Dense(self.data_shape[0])
    self.encoder = _Encoder(self.latent_dim)

  def log_weights_and_latents(self, x, keys, labels=None):
    """`(LogWeights [K, B], z [K, B, d])` for `z = mean + exp(l) eps`."""
    mean, log_std = self.encoder(x)
    eps = jax.vmap(jax.vmap(lambda k: jax.random.normal(k, (self.latent_dim,), mean.dtype)))(keys)
    z = mean + jnp.exp(log_std) * eps
    log_q = D.diag_gaussian_log_prob(z, mean, 2 * log_std)
    return LogWeights(D.gaussian_log_prob(x, self.decoder(z), self.noise),
                      D.standard_normal_log_prob(z), log_q), z

  def log_weights(self, x, keys, labels=None):
    return self.log_weights_and_latents(x, keys)[0]

  def posterior_log_prob(self, x, z, labels=None):
    mean, log_std = self.encoder(x)
    return D.diag_gaussian_log_prob(z, mean, 2 * log_std)

  def sample(self, key, num, labels=None):
    return self.decoder(jax.random.normal(key, (num, self.latent_dim)))

  def reconstruct(self, x, labels=None):
    return self.decoder(self.encoder(x)[0])


class _Encoder(nn.Module):
  """`x [B, D] -> (A x + c, l)`: q's mean `[B, d]` and log standard deviation `[d]`."""

  latent_dim: int

  @nn.compact
  def __call__(self, x):
    log_std = self.param("log_std", nn.initializers.zeros, (self.latent_dim,))
    return nn.Dense(self.latent_dim)(x), jnp.broadcast_to(log_std, x.shape[:-1] + log_std.shape)


def exact_log_px(w: np.ndarray, b: np.ndarray, noise: float, x: np.ndarray) -> np.ndarray:
  """`[B]` log p(x) in float64 for decoder weights `w [D, d]` (x = w z + b + noise)."""
  cov = w @ w.T + noise**2 * np.eye(len(b))
  diff = np.asarray(x, np.float64) - b
  maha = np.einsum("bi,ij,bj->b", diff, np.linalg.inv(cov), diff)
  return -0.5 * (len(b) * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + maha)


def exact_posterior(w: np.ndarray, b: np.ndarray, noise: float,
                    x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`(mean [B, d], covariance [d, d])` of p(z | x) in float64."""
  cov = np.linalg.inv(np.eye(w.shape[1]) + w.T @ w / noise**2)
  return (np.asarray(x, np.float64) - b) @ w @ cov.T / noise**2, cov


def variables_near_posterior(w: np.ndarray, b: np.ndarray, noise: float,
                             offset: float = 0.0) -> dict:
  """The model's variables with decoder (w, b) and q the exact posterior's affine map, its mean
  map's entries and log standard deviations shifted by `offset` (0: q's marginal variances are the
  posterior's, q factorized)."""
  cov = exact_posterior(w, b, noise, b[None])[1]
  a = cov @ w.T / noise**2  # posterior mean = a (x - b)
  return {"params": {
      "decoder": {"kernel": np.asarray(w.T, np.float32), "bias": np.asarray(b, np.float32)},
      "encoder": {"Dense_0": {"kernel": np.asarray(a.T + offset, np.float32),
                              "bias": np.asarray(-a @ b - offset, np.float32)},
                  "log_std": np.asarray(0.5 * np.log(np.diag(cov)) + offset, np.float32)}}}
