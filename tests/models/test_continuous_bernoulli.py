"""The continuous Bernoulli likelihood against float64 oracles: its normalizer in closed form (and
by quadrature), near lambda = 1/2 where the closed form is 0/0, and its mean by quadrature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.models.likelihoods import continuous_bernoulli as cb


def _log_c64(eta: np.ndarray) -> np.ndarray:
  """log C in float64: the closed form 2 artanh(1 - 2 l) / (1 - 2 l), or near l = 1/2 its series
  to eta^6 (the next term is below 1e-12 there)."""
  eta = np.asarray(eta, np.float64)
  lam = 1 / (1 + np.exp(-eta))
  with np.errstate(divide="ignore", invalid="ignore"):
    closed = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
  series = np.log(2) + eta**2 / 12 - 7 * eta**4 / 1440 + 31 * eta**6 / 90720
  return np.where(np.abs(eta) < 1e-2, series, closed)


def _quadrature(f, n=200_001):
  """Simpson's rule over [0, 1] in float64."""
  x = np.linspace(0.0, 1.0, n)
  w = np.ones(n)
  w[1:-1:2], w[2:-1:2] = 4, 2
  return np.sum(w * f(x), axis=-1) / (3 * (n - 1))


ETAS = np.array([-30.0, -8.0, -1.0, -0.3, -0.1, -0.0999, -1e-3, -1e-6, 0.0, 1e-6, 1e-4, 0.05,
                 0.0999, 0.1, 0.1001, 0.5, 2.0, 9.0, 25.0], np.float32)


def test_log_normalizer_matches_float64_on_both_sides_of_the_series_switch():
  got = np.asarray(jax.jit(cb.log_normalizer)(ETAS), np.float64)
  np.testing.assert_allclose(got, _log_c64(ETAS), rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("eta", [-6.0, -0.05, 0.0, 0.02, 0.7, 4.0])
def test_density_integrates_to_one_and_mean_is_its_first_moment(eta):
  lam = 1 / (1 + np.exp(-eta))
  density = lambda x: np.exp(_log_c64(np.float64(eta))) * lam**x * (1 - lam) ** (1 - x)
  assert abs(_quadrature(density) - 1) < 1e-10
  moment = _quadrature(lambda x: x * density(x))
  np.testing.assert_allclose(float(cb.mean(jnp.float32(eta))), moment, atol=2e-6)


def test_log_prob_sums_pixels_and_is_finite_at_the_ends_of_the_unit_interval():
  rng = np.random.default_rng(0)
  x = np.concatenate([[0.0, 1.0], rng.uniform(size=6)]).astype(np.float32)[None]  # [1, 8]
  eta = rng.normal(scale=3, size=(2, 1, 8)).astype(np.float32)  # [K, B, D]
  lam = 1 / (1 + np.exp(-np.float64(eta)))
  expected = np.sum(x * np.log(lam) + (1 - x) * np.log1p(-lam) + _log_c64(eta), axis=-1)
  np.testing.assert_allclose(np.asarray(jax.jit(cb.log_prob)(x, eta)), expected, rtol=1e-5)
  grad = jax.grad(lambda e: cb.log_prob(x, e).sum())(jnp.zeros_like(eta))  # through the series
  assert np.all(np.isfinite(np.asarray(grad)))


def test_a_vae_with_it_builds_from_config():
  config = config_lib.get_config()
  config.model.likelihood, config.data.binarize = "continuous_bernoulli", "none"
  config_lib.validate(config)
  model = build_model(config.model, (8, 8, 1))
  x = jnp.full((2, 8, 8, 1), 0.3)
  variables = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (3, 2)))
  log_w = model.apply(variables, x, jax.random.split(jax.random.key(2), (3, 2))).values
  assert log_w.shape == (3, 2) and np.all(np.isfinite(np.asarray(log_w)))
