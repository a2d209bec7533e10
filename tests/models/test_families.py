"""Posterior, prior and likelihood families against independent computations.

Oracles: dense quadrature on a 2-D grid (normalization and moments), the importance identity
`E_{z ~ q}[p0(z) / q(z)] = 1` (the sampler and the density of q agree, flows included), and NumPy
float64 formulas for the likelihoods and mixtures.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import special, stats

from jaxvae import config as config_lib
from jaxvae.distributions import mixture_diag_gaussian_log_prob
from jaxvae.models import build_model, likelihoods, posteriors
from jaxvae.models.priors import MixturePrior

POSTERIORS = ["diag", "full_cov", "mixture", "planar_flow", "iaf"]
GRID = np.linspace(-8.0, 8.0, 321, dtype=np.float32)
CELL = float(GRID[1] - GRID[0]) ** 2
POINTS = np.stack(np.meshgrid(GRID, GRID, indexing="ij"), -1).reshape(-1, 2)  # [G, 2]


def _grid_around(z):
  """A 321 x 321 grid covering 9 standard deviations of the draws `z [N, 2]` each side, and its cell."""
  axes = [np.linspace(m - 9 * s, m + 9 * s, 321) for m, s in zip(z.mean(0), z.std(0))]
  points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
  return points.astype(np.float32), float((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))


def _draw(module, h, keys):
  """`(z [K, B, L], log q(z) [K, B])`: one draw per key from the head's q at features `h`."""
  return module.sample(module.parameters(h), keys)


def _perturbed_head(name, num_samples=1):
  """A 2-D posterior head with randomized parameters, its params, features h [1, 4] and keys."""
  module = posteriors.make_posterior(ml_collections.ConfigDict(dict(
      posterior=name, latent_dim=2, num_flows=2, num_components=3)))
  h = jax.random.normal(jax.random.key(0), (1, 4))
  keys = jax.random.split(jax.random.key(1), (num_samples, 1))
  params = module.init(jax.random.key(2), h, keys[:1], method=_draw)
  noise = lambda p, k: 0.4 * jax.random.normal(k, p.shape)  # noqa: E731
  leaves, tree = jax.tree.flatten(params)
  keys_p = jax.random.split(jax.random.key(3), len(leaves))
  params = jax.tree.unflatten(tree, [p + noise(p, k) for p, k in zip(leaves, keys_p)])
  return module, params, h, keys


@pytest.mark.parametrize("name", POSTERIORS)
def test_posterior_density_agrees_with_its_sampler(name):
  """E_q[p0(z) / q(z)] = 1 for a normalized p0; a log q off by a constant or a wrong log-det fails."""
  module, params, h, keys = _perturbed_head(name, num_samples=20_000)
  z, log_q = jax.jit(lambda p: module.apply(p, h, keys, method=_draw))(params)
  z, log_q = np.asarray(z[:, 0], np.float64), np.asarray(log_q[:, 0], np.float64)
  centre, scale = z.mean(0), 0.5 * z.std(0)  # p0 narrower than q: the ratio has finite variance
  if name == "mixture":  # p0 = component 0, so p0 / q <= M (a narrow p0 between the modes is not)
    means, log_vars = module.apply(params, h, method=module.parameters)
    centre, scale = np.asarray(means[0, 0]), np.exp(0.5 * np.asarray(log_vars[0, 0]))
  ratio = np.exp(stats.norm.logpdf(z, centre, scale).sum(-1) - log_q)
  stderr = ratio.std() / math.sqrt(ratio.size)
  assert abs(ratio.mean() - 1.0) < 4 * stderr + 1e-3, (ratio.mean(), stderr)


@pytest.mark.parametrize("name", ["diag", "full_cov", "mixture"])
def test_closed_form_posterior_integrates_to_one_and_matches_sample_mean(name):
  module, params, h, keys = _perturbed_head(name, num_samples=20_000)
  z = np.asarray(module.apply(params, h, keys, method=_draw)[0][:, 0], np.float64)
  points, cell = _grid_around(z)
  post = module.apply(params, h, method=module.parameters)
  density = np.exp(np.asarray(module.apply(params, jnp.asarray(points)[:, None, :], post,
                                           method=module.log_prob)[:, 0], np.float64))
  np.testing.assert_allclose(density.sum() * cell, 1.0, atol=2e-3)
  quadrature_mean = (density[:, None] * points).sum(0) * cell
  np.testing.assert_allclose(z.mean(0), quadrature_mean, atol=4 * z.std(0).max() / math.sqrt(len(z)))


def test_mixture_posterior_log_prob_matches_numpy():
  module, params, h, _ = _perturbed_head("mixture")
  means, log_vars = module.apply(params, h, method=module.parameters)
  means, log_vars = np.asarray(means[0], np.float64), np.asarray(log_vars[0], np.float64)
  z = POINTS[::997].astype(np.float64)
  component = stats.norm.logpdf(z[:, None, :], means, np.exp(0.5 * log_vars)).sum(-1)  # [N, M]
  expected = special.logsumexp(component, axis=-1) - math.log(3)
  got = module.apply(params, jnp.asarray(z, jnp.float32)[:, None, :],
                     module.apply(params, h, method=module.parameters), method=module.log_prob)
  np.testing.assert_allclose(got[:, 0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_samples", [1, 2, 6, 7])
def test_mixture_posterior_stratifies_draws_over_components(num_samples):
  """Of K draws, rows k < K - K % M come from component k % M, and a split of the rows at a
  multiple of M draws exactly what the whole does (so the chunked evaluator matches)."""
  module, params, h, keys = _perturbed_head("mixture", num_samples=num_samples)
  head = params["params"]["head"]  # component m: mean (100 m, 100 m), standard deviation 1e-2
  head["kernel"] = jnp.zeros_like(head["kernel"])
  head["bias"] = jnp.array([0., 0., -9., -9., 100., 100., -9., -9., 200., 200., -9., -9.])
  z, log_q = module.apply(params, h, keys, method=_draw)
  component = np.rint(np.asarray(z[:, 0, 0]) / 100).astype(int)
  strata = num_samples - num_samples % 3
  np.testing.assert_array_equal(component[:strata], np.arange(strata) % 3)
  assert set(component[strata:]) <= {0, 1, 2}
  assert np.all(np.isfinite(log_q))
  if strata:
    parts = [module.apply(params, h, keys[:strata], method=_draw)[0],
             module.apply(params, h, keys[strata:], method=_draw)[0]]
    np.testing.assert_array_equal(np.concatenate(parts), z)


def test_stratified_mixture_estimates_are_unbiased_with_lower_variance():
  """The mean of p0(z) / q(z) over K = 3 stratified draws has expectation 1, as over 3 independent
  draws, and a smaller variance (20,000 sets each). p0 reweights q's components by (0.6, 0.3, 0.1),
  so p0 / q <= 1.8 and both estimates have finite variance."""
  module, params, h, _ = _perturbed_head("mixture")
  means, log_vars = module.apply(params, h, method=module.parameters)
  p0_logits = jnp.log(jnp.array([0.6, 0.3, 0.1]))

  def estimates(keys):  # [N, K] keys -> [N] means of the K ratios p0 / q
    z, log_q = jax.vmap(lambda k: module.apply(params, h, k[:, None], method=_draw))(
        keys)  # [N, K, 1, 2]
    log_p0 = mixture_diag_gaussian_log_prob(z, p0_logits, means, log_vars)
    return np.exp(np.asarray(log_p0 - log_q, np.float64)[..., 0]).mean(-1)

  keys = jax.random.split(jax.random.key(4), (20_000, 3))
  stratified = estimates(keys)
  independent = np.mean([estimates(keys[:, i:i + 1]) for i in range(3)], axis=0)  # K = 1 each
  for e in (stratified, independent):
    assert abs(e.mean() - 1.0) < 4 * e.std() / math.sqrt(e.size), e.mean()
  assert stratified.var() < 0.8 * independent.var(), (stratified.var(), independent.var())


def test_mixture_prior_matches_numpy_and_integrates_to_one():
  prior = MixturePrior(latent_dim=2, num_components=3)
  params = prior.init(jax.random.key(0), jnp.zeros((1, 2)), None, method=prior.log_prob)
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(1), p.shape), params)
  log_p = np.asarray(prior.apply(params, jnp.asarray(POINTS), None, method=prior.log_prob),
                     np.float64)
  np.testing.assert_allclose(np.exp(log_p).sum() * CELL, 1.0, atol=2e-3)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
  component = stats.norm.logpdf(POINTS[:, None, :], p["means"], np.exp(0.5 * p["log_vars"])).sum(-1)
  expected = special.logsumexp(component + special.log_softmax(p["logits"]), axis=-1)
  np.testing.assert_allclose(log_p, expected, rtol=1e-5, atol=1e-5)
  draws = np.asarray(prior.apply(params, jax.random.key(2), 20_000, None, method=prior.sample))
  quadrature_mean = (np.exp(log_p)[:, None] * POINTS).sum(0) * CELL
  np.testing.assert_allclose(draws.mean(0), quadrature_mean, atol=4 * draws.std(0).max() / 141)


@pytest.mark.parametrize("posterior", ["diag", "full_cov", "mixture"])
def test_vamp_prior_is_the_mean_of_q_over_pseudo_inputs(posterior):
  section = config_lib.model_config("vae")
  section.update(latent_dim=2, hidden_sizes=(6,), posterior=posterior, prior="vamp",
                 num_pseudo_inputs=4, likelihood="gaussian")
  model = build_model(section, (3,))
  x = jnp.zeros((1, 3))
  params = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (1, 1)))
  assert params["params"]["prior"]["pseudo_inputs"].shape == (4, 3)
  log_p = np.asarray(model.apply(params, jnp.asarray(POINTS),
                                 method=lambda m, z: m.prior.log_prob(z, m)), np.float64)
  np.testing.assert_allclose(np.exp(log_p).sum() * CELL, 1.0, atol=2e-3)

  def per_pseudo_input(module):  # log q(z | u_p) for every grid point, one pseudo-input at a time
    u = module.prior.pseudo_inputs
    return jnp.stack([module.posterior_head.log_prob(
        jnp.asarray(POINTS), module.posterior_parameters(u[p:p + 1])) for p in range(4)],
        -1)  # [G, 4]

  log_q = np.asarray(model.apply(params, method=per_pseudo_input), np.float64)
  np.testing.assert_allclose(log_p, special.logsumexp(log_q, -1) - math.log(4), rtol=1e-5, atol=1e-5)


def _numpy_logistic_mixture(x, logits, means, log_scales, num_bits):
  levels = 2**num_bits - 1
  k = np.round(x * levels)[..., None]
  s = np.exp(np.maximum(log_scales, -7.0))
  upper = np.where(k == levels, 1.0, special.expit((k / levels + 0.5 / levels - means) / s))
  lower = np.where(k == 0, 0.0, special.expit((k / levels - 0.5 / levels - means) / s))
  mix = special.log_softmax(logits, -1)
  return special.logsumexp(mix + np.log(upper - lower), -1).sum(-1)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian_fixed", "gaussian_learned",
                                  "discretized_logistic", "categorical256"])
def test_likelihoods_match_numpy_float64(name):
  num_dims, rng = 6, np.random.default_rng(0)
  kind = name.removesuffix("_fixed").removesuffix("_learned")
  section = likelihoods.likelihood_defaults()
  section.update(likelihood=kind, likelihood_scale=0.3 if name == "gaussian_fixed" else 0.0,
                 num_mixtures=3, num_bits=3)
  module = likelihoods.make_likelihood(section, num_dims)
  out = rng.normal(size=(2, 4, num_dims, module.params_per_dim)).astype(np.float32)  # [K, B, D, P]
  x = (rng.integers(0, 8, size=(4, num_dims)) / 7).astype(np.float32)
  if kind == "bernoulli":
    x = np.round(x)
  params = module.init(jax.random.key(0), x, out, method=module.log_prob)
  if name == "gaussian_learned":
    params = {"params": {"raw_scale": jnp.asarray(rng.normal(size=num_dims), jnp.float32)}}
  got = jax.jit(lambda p: module.apply(p, x, out, method=module.log_prob))(params)
  o, xd = out.astype(np.float64), x.astype(np.float64)
  if kind == "bernoulli":
    expected = (xd * -np.logaddexp(0, -o[..., 0]) + (1 - xd) * -np.logaddexp(0, o[..., 0])).sum(-1)
  elif kind == "gaussian":
    scale = 0.3 if name == "gaussian_fixed" else (
        np.logaddexp(0, np.asarray(params["params"]["raw_scale"], np.float64)) + 1e-3)
    expected = stats.norm.logpdf(xd, o[..., 0], scale).sum(-1)
  elif kind == "discretized_logistic":
    logits, means, log_scales = np.split(o, 3, -1)
    expected = _numpy_logistic_mixture(xd, logits, means + 0.5, log_scales, 3)
  else:
    levels = np.round(xd * 7).astype(int)
    lp = special.log_softmax(o, -1)
    expected = np.take_along_axis(lp, np.broadcast_to(levels, lp.shape[:-1])[..., None], -1)[..., 0]
    expected = expected.sum(-1)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
  mean = module.apply(params, out, method=module.mean)
  assert mean.shape == (2, 4, num_dims) and bool(jnp.all(jnp.isfinite(mean)))
