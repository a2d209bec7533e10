"""The 1-D toy: its terms against NumPy float64, and the evaluator against its exact log p(x)."""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from scipy import special, stats

from jaxvae.data.toy import toy_arrays, toy_log_density
from jaxvae.models.toy import ToyModel
from jaxvae.models.toy_plot import COLOURS, save_toy_plot
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.train import loop
from jaxvae.runtime.trained import abstract_variables

CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "toy.py"


def _toy_config(variant=""):
  spec = importlib.util.spec_from_file_location("toy_config", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def _numpy_terms(params, x):
  """`(log p(x, z) [2, B], log q(z | x) [2, B])` in float64."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  scales = np.logaddexp(0.0, p["raw_scales"]) + 1e-3
  log_joint = np.stack([stats.norm.logpdf(x[:, 0], p["means"][z], scales[z]) for z in (0, 1)])
  log_joint -= math.log(2.0)
  logit = p["q_slope"] * x[:, 0] + p["q_bias"]
  log_q = np.stack([-np.logaddexp(0.0, logit), -np.logaddexp(0.0, -logit)])
  return log_joint, log_q


def test_toy_terms_match_numpy_float64():
  model = ToyModel()
  x, _ = toy_arrays("test")
  x = x[:16]
  keys = jax.random.split(jax.random.key(1), (64, 16))
  params = model.init(jax.random.key(0), x, keys[:1])["params"]
  params = {"q_slope": jnp.float32(0.7), "q_bias": jnp.float32(-0.2),
            "means": jnp.array([-1.5, 2.5]), "raw_scales": jnp.array([0.3, -0.4])}
  apply = lambda method, *args: jax.jit(  # noqa: E731
      lambda p: model.apply({"params": p}, *args, method=method))(params)
  log_joint, log_q = _numpy_terms(params, x.astype(np.float64))
  np.testing.assert_allclose(apply("exact_log_px", x), special.logsumexp(log_joint, 0), rtol=1e-5)
  expected_elbo = np.sum(np.exp(log_q) * (log_joint - log_q), 0)
  np.testing.assert_allclose(apply("exact_elbo", x), expected_elbo, rtol=1e-5)
  terms = apply("log_weights", x, keys)
  z = np.where(np.isclose(terms.log_posterior, log_q[1], rtol=1e-5), 1, 0)  # which z was drawn
  b = np.arange(16)
  np.testing.assert_allclose(terms.log_posterior, log_q[z, b], rtol=1e-5)
  np.testing.assert_allclose(terms.values, log_joint[z, b] - log_q[z, b], rtol=1e-5, atol=1e-5)
  # The draws follow q: the fraction of z = 1 over 64 samples per example is near q(z = 1 | x).
  np.testing.assert_allclose(z.mean(), np.exp(log_q[1]).mean(), atol=0.05)


def test_evaluator_reproduces_the_exact_log_px_and_the_plot(tfds_dir, tmp_path, monkeypatch):
  # The toy data are [N, 1], not images: the trainer's PNG grids do not apply to them.
  monkeypatch.setattr(loop, "_image_writer", lambda *args: (lambda params, step: None))
  config = _toy_config()
  config.data.data_dir = tfds_dir
  config.train.num_steps = 300
  workdir = str(tmp_path / "toy")
  record = loop.train_and_evaluate(config, workdir)
  assert record["num_samples"] == 5_000

  model = ToyModel()
  target = abstract_variables(model, (1,), jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  params = checkpoints.restore_variables(300, target)["params"]
  checkpoints.close()
  x, _ = toy_arrays(config.data.eval_split)
  exact = np.asarray(model.apply({"params": params}, x, method=model.exact_log_px), np.float64)
  exact_elbo = np.asarray(model.apply({"params": params}, x, method=model.exact_elbo), np.float64)
  print(f"evaluator log p(x) {record['log_px']:.4f}, exact {exact.mean():.4f}, data "
        f"{toy_log_density(x).mean():.4f}; evaluator ELBO {record['elbo']:.4f}, exact "
        f"{exact_elbo.mean():.4f}")
  assert abs(record["log_px"] - exact.mean()) < 0.05
  assert abs(record["elbo"] - exact_elbo.mean()) < 0.05
  # Learned: the model family holds the data distribution, and training gets close to it.
  assert abs(exact.mean() - toy_log_density(x).mean()) < 0.05

  path = str(tmp_path / "toy.png")
  curves = save_toy_plot(model, params, x, path)
  image = np.asarray(Image.open(path).convert("RGB"))
  assert image.shape == (480, 720, 3)
  for name in ("data", "p_x", "z0", "z1", "q"):
    assert np.all(image == COLOURS[name], axis=-1).any(), f"{name} is not drawn"
  # The learned components sit on the two modes, and q switches between them.
  ends = sorted([curves["q"][0], curves["q"][-1]])
  assert ends[0] < 0.05 and ends[1] > 0.95
