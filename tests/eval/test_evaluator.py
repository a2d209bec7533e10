"""The evaluator on a linear-Gaussian model, where log p(x) and the posterior are known exactly.

p(z) = N(0, I_2), p(x | z) = N(w . z + b, s^2) on the 1-D toy data, with w = (w1, 0): z_2 does not
reach x, so the exact posterior is diagonal, z_1 | x ~ N(w1 (x - b) / (w1^2 + s^2),
s^2 / (w1^2 + s^2)), z_2 | x ~ N(0, 1), and p(x) = N(b, w1^2 + s^2). The amortized q shrinks the
posterior mean and widens its variance, so its ELBO is well below log p(x).
"""

import math
import os
import socket
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import distributions as D
from jaxvae import losses
from jaxvae.data.toy import toy_arrays
from jaxvae.eval import Evaluator
from jaxvae.models import LogWeights, interface
from jaxvae.models.posteriors import DiagGaussian

W1, B, NOISE_VAR = 1.5, 0.2, 0.3
POST_VAR = NOISE_VAR / (W1**2 + NOISE_VAR)
POST_COEF = W1 / (W1**2 + NOISE_VAR)


class LinearGaussian(nn.Module):
  """A Linen model with the one interface and the capabilities of a diagonal Gaussian q with a
  N(0, I) prior (`posterior_parameters`, `kl_per_dimension`); a 2-D latent, 1-D data."""

  data_shape: tuple[int, ...] = (1,)
  capabilities = frozenset({interface.POSTERIOR_PARAMETERS, interface.FACTORIZED_KL})

  def setup(self):
    zeros = nn.initializers.zeros
    self.coef, self.shift, self.log_var = (self.param(n, zeros, (2,))
                                           for n in ("coef", "shift", "log_var"))
    self.w = self.param("w", zeros, (2,))
    self.b = self.param("b", zeros, ())
    self.log_noise_var = self.param("log_noise_var", zeros, ())

  def posterior_parameters(self, x, labels=None):
    mean = x.reshape(x.shape[0], 1) * self.coef + self.shift
    return DiagGaussian(mean, jnp.broadcast_to(self.log_var, mean.shape))

  def log_weights(self, x, keys, labels=None, posterior=None):
    del labels
    return self.log_weights_under(
        x, keys, self.posterior_parameters(x) if posterior is None else posterior)

  def kl_per_dimension(self, x, labels=None):
    mean, log_var = self.posterior_parameters(x)
    return mean, D.kl_diag_gaussian_standard_normal(mean[..., None], log_var[..., None])

  def sample(self, key, num, labels=None):
    z = jax.random.normal(key, (num, 2))
    return (z @ self.w + self.b)[:, None]

  def reconstruct(self, x, labels=None):
    return (self.posterior_parameters(x).mean @ self.w + self.b)[:, None]

  def log_weights_under(self, x, keys, posterior):
    mean, log_var = posterior
    shape = keys.shape + mean.shape[-1:]
    z = jax.vmap(jax.vmap(D.diag_gaussian_sample))(
        keys, jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape))  # [K, B, 2]
    x_mean = z @ self.w + self.b  # [K, B]
    log_lik = -0.5 * (math.log(2 * math.pi) + self.log_noise_var
                      + (x.reshape(-1) - x_mean) ** 2 / jnp.exp(self.log_noise_var))
    return LogWeights(log_likelihood=log_lik, log_prior=D.standard_normal_log_prob(z),
                      log_posterior=D.diag_gaussian_log_prob(z, mean, log_var))

  def __call__(self, x, keys, labels=None):
    return self.log_weights(x, keys, labels)


def _params(mean_scale=0.5, extra_log_var=1.0):
  """The exact generative model; q(z_1 | x) with its mean scaled and log-variance shifted."""
  f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
  return {
      "w": f32([W1, 0.0]), "b": f32(B), "log_noise_var": f32(math.log(NOISE_VAR)),
      "coef": f32([mean_scale * POST_COEF, 0.0]),
      "shift": f32([-mean_scale * POST_COEF * B, 0.0]),
      "log_var": f32([math.log(POST_VAR) + extra_log_var, 0.0]),
  }


def _variables(**kwargs):
  return {"params": _params(**kwargs)}


def _exact_log_px(x):
  var = W1**2 + NOISE_VAR
  return -0.5 * (np.log(2 * np.pi * var) + (np.asarray(x, np.float64) - B) ** 2 / var)


NUM_SAMPLES_2P = (1, 10, 30)


def toy_eval_config():
  """The smoke config on the 1-D toy data (500 test examples)."""
  from jaxvae.config import get_config

  config = get_config("smoke")
  config.data.source = "toy"
  config.data.binarize = "none"
  config.eval.batch_size = 64
  config.eval.chunk_size = 50
  return config


@pytest.fixture
def toy_config():
  return toy_eval_config()


def _run(config, num_samples, params=None, refine_steps=0):
  evaluator = Evaluator(config, "test", num_samples, refine_steps, model=LinearGaussian())
  return evaluator, evaluator.run(params or _variables())


def run_linear_gaussian(config, num_samples):
  """Per-example results of the linear-Gaussian model on the toy test split."""
  return _run(config, num_samples)[1]


def test_k5000_is_within_005_nats_of_exact_log_px(toy_config):
  evaluator, results = _run(toy_config, (1, 100, 5000))
  x, _ = toy_arrays("test")
  exact = _exact_log_px(x[:, 0])
  np.testing.assert_array_equal(results["id"], np.arange(len(x)))
  log_px, elbo = results["log_px"].mean(0), results["elbo"].mean(0)
  assert abs(log_px[2] - exact.mean()) < 0.05
  assert exact.mean() - elbo[2] > 0.3  # The poor q leaves a gap only large K closes.
  assert elbo[2] < log_px[0] < log_px[1] < log_px[2] + 1e-6
  records = evaluator.records(7, results, seconds=1.0)
  assert [r["num_samples"] for r in records] == [1, 100, 5000]
  r = records[-1]
  assert (r["step"], r["split"], r["num_examples"]) == (7, "test", len(x))
  np.testing.assert_allclose(r["log_px_stderr"], exact.std(ddof=1) / np.sqrt(len(x)), rtol=0.05)
  np.testing.assert_allclose(r["gap"], r["log_px"] - r["elbo"])
  assert "bits_per_dim" not in r  # the toy's data are reals, not pixels


def test_nested_k_are_prefixes_of_the_same_samples(toy_config):
  """Each K from one pass equals a NumPy logsumexp over the first K of all K_max draws."""
  num_samples = (1, 3, 10, 40)
  _, nested = _run(toy_config, num_samples)
  model, params = LinearGaussian(), _params()
  x, _ = toy_arrays("test")
  x = x[:70]
  example_keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(toy_config.eval.seed),
                                                           jnp.arange(70))
  keys = losses.sample_keys(example_keys, jnp.arange(40))
  with jax.default_matmul_precision("highest"):
    log_w = np.asarray(model.apply({"params": params}, jnp.asarray(x), keys,
                                   method=model.log_weights).values, np.float64)  # [40, 70]
  for j, k in enumerate(num_samples):
    expected = np.logaddexp.reduce(log_w[:k], axis=0) - np.log(k)
    np.testing.assert_allclose(nested["log_px"][:70, j], expected, atol=2e-5)
    np.testing.assert_allclose(nested["elbo"][:70, j], log_w[:k].mean(0), atol=2e-5)
  _, alone = _run(toy_config, 10)
  np.testing.assert_allclose(alone["log_px"][:, 0], nested["log_px"][:, 2], atol=1e-5)


def test_same_numbers_with_1_or_8_devices_and_any_batch_or_chunk_size(toy_config):
  """Also with a batch that does not divide the devices: padded, each example counted once."""
  toy_config.train.num_devices = 8
  reference = run_linear_gaussian(toy_config, NUM_SAMPLES_2P)
  assert len(jax.devices()) == 8
  for devices, batch_size, chunk_size in ((1, 40, 7), (8, 16, 30), (8, 12, 30)):  # 12: padded
    toy_config.train.num_devices = devices
    toy_config.eval.batch_size = batch_size
    toy_config.eval.chunk_size = chunk_size
    results = run_linear_gaussian(toy_config, NUM_SAMPLES_2P)
    for name in ("id", "log_px", "elbo"):
      np.testing.assert_allclose(results[name], reference[name], atol=1e-5, err_msg=name)


def test_diagnostics_count_active_units_and_kl_per_dimension(toy_config):
  evaluator, results = _run(toy_config, 2)
  x, _ = toy_arrays("test")
  x = x[:, 0].astype(np.float64)
  q = _params()
  mean = x[:, None] * np.asarray(q["coef"], np.float64) + np.asarray(q["shift"], np.float64)
  var = np.exp(np.asarray(q["log_var"], np.float64))
  kl = 0.5 * (mean**2 + var - 1 - np.log(var))  # [N, 2], against N(0, 1)
  record = evaluator.diagnostics(3, results)
  assert record["num_latents"] == 2 and record["active_units"] == 1  # z_2 is the prior: inactive
  np.testing.assert_allclose(record["latent_activity"], mean.var(0), rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(record["kl_per_dim"], kl.mean(0), rtol=1e-4, atol=1e-6)
  assert record["kl_per_dim"][1] < 1e-6 < record["kl_per_dim"][0]
  assert "1 of 2 latent dimensions are inactive" in record["warning"]


def test_diagnostics_say_why_a_non_gaussian_posterior_has_none(toy_config):
  class Tagged(LinearGaussian):
    """The same model, its posterior parameters in a dict: it does not declare FACTORIZED_KL
    (diagnostics cannot interpret them), only POSTERIOR_PARAMETERS."""

    capabilities = frozenset({interface.POSTERIOR_PARAMETERS})

    def posterior_parameters(self, x, labels=None):
      mean, log_var = LinearGaussian.posterior_parameters(self, x)
      return {"loc": mean, "log_scale": 0.5 * log_var}

    def log_weights(self, x, keys, labels=None, posterior=None):
      post = self.posterior_parameters(x) if posterior is None else posterior
      return self.log_weights_under(x, keys, (post["loc"], 2 * post["log_scale"]))

  evaluator = Evaluator(toy_config, "test", 3, model=Tagged())
  assert "FACTORIZED_KL" in evaluator.posterior_problem
  results = evaluator.run(_variables())
  assert "log_px" in results and "posterior_mean" not in results
  unavailable = evaluator.diagnostics(0, results)["unavailable"]
  assert "diagonal Gaussian" in unavailable and "FACTORIZED_KL" in unavailable
  # Refinement needs only the posterior's parameters, whatever their structure.
  refined = Evaluator(toy_config, "test", 3, refine_steps=2, model=Tagged()).run(_variables())
  assert np.all(np.isfinite(refined["refined_elbo"]))


def test_refinement_closes_the_amortization_gap(toy_config):
  """The diagonal family holds the exact posterior, so refinement drives the ELBO to log p(x)."""
  toy_config.eval.batch_size = 128  # Default refine_learning_rate and refine_num_samples.
  evaluator, results = _run(toy_config, (1, 100), refine_steps=500)
  exact = _exact_log_px(toy_arrays("test")[0][:, 0]).mean()
  record = evaluator.records(0, results, 1.0)[-1]
  assert exact - record["elbo"] > 1.0
  assert record["refined_elbo"] <= exact + 0.002  # A bound (up to Monte Carlo error)
  assert abs(record["refined_elbo"] - exact) < 0.01
  assert abs(record["refined_log_px"] - exact) < 0.01
  np.testing.assert_allclose(record["amortization_gap"], record["refined_elbo"] - record["elbo"])
  assert record["refine_steps"] == 500


def run_two_processes(mode: str, path: str) -> list[str]:
  """Runs `two_process_worker.py` as processes 0 and 1 on localhost; their outputs."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "two_process_worker.py")
  root = os.path.dirname(os.path.dirname(os.path.dirname(worker)))
  env = dict(os.environ, PYTHONPATH=root)
  procs = [subprocess.Popen([sys.executable, worker, str(port), str(i), mode, path], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outputs = [p.communicate(timeout=180)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  return outputs


def test_two_processes_on_localhost_give_the_same_numbers(toy_config, tmp_path):
  """2 processes x 2 CPU devices (gloo collectives) against this process's 8 devices."""
  out = str(tmp_path / "two_process.npz")
  run_two_processes("estimate", out)
  two = np.load(out)
  one = run_linear_gaussian(toy_config, NUM_SAMPLES_2P)
  for name in ("id", "log_px", "elbo", "posterior_mean"):
    np.testing.assert_allclose(two[name], one[name], atol=1e-5, err_msg=name)


def test_the_1d_toy_model_at_k5000_is_within_005_nats_of_its_exact_log_px(toy_config):
  """The library's toy model (discrete z, log p(x) by enumeration), with a poor q(z | x)."""
  from jaxvae.models import build_model

  from jaxvae.config import model_config

  toy_config.model = model_config("toy")
  model = build_model(toy_config.model, (1,))
  params = {"q_slope": jnp.float32(0.3), "q_bias": jnp.float32(0.2),
            "means": jnp.array([-2.0, 2.0]), "raw_scales": jnp.array([-0.4, 0.1])}
  evaluator = Evaluator(toy_config, "test", (1, 5000), model=model)
  assert "FACTORIZED_KL" in evaluator.posterior_problem  # Diagnostics say why not.
  results = evaluator.run({"params": params})
  x = jnp.asarray(toy_arrays("test")[0])
  exact = np.asarray(model.apply({"params": params}, x, method=model.exact_log_px), np.float64)
  exact_elbo = np.asarray(model.apply({"params": params}, x, method=model.exact_elbo), np.float64)
  assert abs(results["log_px"][:, 1].mean() - exact.mean()) < 0.05
  assert exact.mean() - exact_elbo.mean() > 0.2  # The poor q's ELBO is far below.
  np.testing.assert_allclose(results["elbo"][:, 1].mean(), exact_elbo.mean(), atol=0.05)


def test_diagnostics_need_a_standard_normal_prior(toy_config):
  """A VAE declares FACTORIZED_KL only with a diagonal Gaussian q and the N(0, I) prior."""
  from jaxvae.config import model_config
  from jaxvae.models import build_model

  for prior in ("standard_normal", "mixture"):
    section = model_config("vae")
    section.update(prior=prior, hidden_sizes=(4,), latent_dim=2, likelihood="gaussian")
    evaluator = Evaluator(toy_config, "test", 3, model=build_model(section, (1,)))
    if prior == "standard_normal":
      assert evaluator.posterior_problem is None
    else:
      assert "FACTORIZED_KL" in evaluator.posterior_problem
