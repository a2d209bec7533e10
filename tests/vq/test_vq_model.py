"""The VQ-VAE model: where each loss term's gradient goes, its bound, and the trainer's handling of
its codebook (model state in the `codebook` collection: written by the model, no optimizer state,
kept on a skipped update, threaded through accumulated micro-batches) and metrics."""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.models.vq_quantizer import CODEBOOK
from jaxvae.models.vqvae import VQVAE
from jaxvae.train import state as state_lib

SHAPE = (8, 8, 1)
_rng = np.random.default_rng(0)
X = jnp.asarray(_rng.integers(0, 2, size=(6,) + SHAPE), jnp.float32)
KEYS = jax.random.split(jax.random.key(0), (3, 6))


def _model(update="ema") -> VQVAE:
  init = "kmeans" if update == "ema" else "random"
  section = config_lib.model_config("vqvae")
  section.update(num_codes=16, code_dim=4, channels=(8,), codebook_update=update,
                 codebook_init=init, restart_dead_codes=update == "ema")
  return build_model(section, SHAPE)


def _codebook(variables):
  """The codebook, wherever it lives: `params` (trained by the loss) or the `codebook` state (EMA)."""
  if "codebook" in variables["params"].get("quantizer", {}):
    return variables["params"]["quantizer"]["codebook"]
  return variables[CODEBOOK]["quantizer"]["codebook"]


def _norms(variables):
  tree = variables["params"]
  return {name: float(optax.tree.norm(tree[name])) for name in ("encoder", "decoder")} | {
      "codebook": float(jnp.linalg.norm(_codebook(variables)))}


def _penalty(model, variables):
  """The `[B]` training penalty the model writes to the `losses` collection."""
  _, written = model.apply(variables, X, KEYS, method=model.log_weights, mutable=["losses"])
  return written["losses"]["penalty"]


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_each_term_moves_only_what_it_should(update):
  model = _model(update)
  variables = jax.jit(model.init)(jax.random.key(1), X, KEYS)
  assert ("codebook" in variables["params"].get("quantizer", {})) == (update == "loss")
  assert "unused_steps" in variables[CODEBOOK]["quantizer"]

  def term(name):
    def f(variables):  # The gradient with respect to every variable, the codebook's state too.
      if name == "reconstruction":
        log_weights = model.apply(variables, X, KEYS, method=model.log_weights)
        return -jnp.sum(log_weights.log_likelihood[0])
      return jnp.sum(_penalty(model, variables))
    return _norms(jax.jit(jax.grad(f))(variables))

  reconstruction, penalty = term("reconstruction"), term("penalty")
  # Reconstruction: the decoder, and the encoder through the straight-through estimator.
  assert reconstruction["decoder"] > 0 and reconstruction["encoder"] > 0
  assert reconstruction["codebook"] == 0
  # Commitment (+ codebook term for 'loss'): the encoder; the codebook only when it is trained.
  assert penalty["encoder"] > 0 and penalty["decoder"] == 0
  assert (penalty["codebook"] > 0) == (update == "loss")


def test_commitment_only_penalty_value_matches_numpy():
  model = _model("ema")
  variables = jax.jit(model.init)(jax.random.key(1), X, KEYS)

  def pieces(module):
    z_e = module.encoder(X)
    return z_e, module.log_weights(X, KEYS)

  (z_e, _), written = jax.jit(lambda v: model.apply(v, method=pieces, mutable=["losses"]))(
      variables)
  z = np.float64(z_e).reshape(6, -1, 4)
  codebook = np.float64(_codebook(variables))
  nearest = codebook[np.argmin(((z[:, :, None] - codebook) ** 2).sum(-1), -1)]
  np.testing.assert_allclose(written["losses"]["penalty"],
                             0.25 * ((z - nearest) ** 2).sum((1, 2)), rtol=1e-4)
  # Outside training (`losses` not mutable) nothing is written: the bound has no penalty term.
  _, none = model.apply(variables, X, KEYS, mutable=["metrics"])
  assert "losses" not in none


def test_log_weight_is_the_bound_with_the_uniform_code_prior():
  model = _model()
  variables = jax.jit(model.init)(jax.random.key(1), X, KEYS)
  log_weights = jax.jit(lambda v: model.apply(v, X, KEYS))(variables)
  codes = model.apply(variables, X, method=model.encode)
  log_px_given_z = model.apply(variables, X, codes, method=model.log_likelihood)
  logits = np.float64(model.apply(variables, codes, method=model.decode))[..., 0]
  x = np.float64(X).reshape(6, -1)
  bernoulli = np.sum(x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits), -1)
  np.testing.assert_allclose(log_px_given_z, bernoulli, rtol=1e-5)
  assert codes.shape == (6, 4, 4) and log_weights.values.shape == (3, 6)
  want = bernoulli - 16 * math.log(16)
  for k in range(3):  # q is a point mass: every sample is the same bound
    np.testing.assert_allclose(log_weights.values[k], want, rtol=1e-5)
  np.testing.assert_array_equal(log_weights.log_posterior, 0.0)


def test_trainer_replaces_the_codebook_and_logs_usage_metrics():
  model = _model()
  train = config_lib.get_config().train
  optimizer, schedule = state_lib.make_optimizer(train)
  state = state_lib.init_state(model, optimizer, SHAPE, jax.random.key(0))
  assert "quantizer" not in state.params  # the EMA codebook and its statistics are state
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train))
  new, metrics = step(state, {"image": X})
  quantizer = new.model_state[CODEBOOK]["quantizer"]
  assert float(quantizer["initialized"]) == 1.0  # written by the model, not by Adam
  # Counts start at 1 per code, then one EMA step over the batch's 6 x 16 encoder outputs.
  np.testing.assert_allclose(float(jnp.sum(quantizer["ema_count"])),
                             16 * 0.99 + 0.01 * 6 * 16, rtol=1e-5)
  for name in ("quantizer_perplexity", "quantizer_codes_used", "quantizer_dead_codes"):
    assert name in metrics and np.isfinite(metrics[name])
  assert 1.0 <= float(metrics["quantizer_perplexity"]) <= 16.0
  np.testing.assert_allclose(metrics["loss"], -metrics["elbo"] + metrics["penalty"], rtol=1e-5)
  nan, _ = step(state, {"image": X * jnp.nan})  # a skipped update keeps the codebook
  jax.tree.map(np.testing.assert_array_equal, nan.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, nan.model_state, state.model_state)


_STATISTICS = ("codebook", "ema_count", "ema_sum", "unused_steps", "initialized")


def test_vq_vae_trains_with_accumulated_micro_batches_and_no_optimizer_state_for_its_codebook(
    tfds_dir, tmp_path):
  """configs/digits_vqvae.py:smoke with train.accumulate_steps=2 through the trainer: the codebook
  state threads through the micro-batches, and the saved train state (a real Orbax restore) holds
  the codebook and its statistics in `model_state['codebook']`, with no optimizer-state leaf for
  any of them."""
  from jaxvae.runtime.checkpoint import Checkpoints
  from jaxvae.train import train_and_evaluate

  path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "digits_vqvae.py"
  spec = importlib.util.spec_from_file_location("digits_vqvae", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("smoke")
  config.data.data_dir = tfds_dir
  config.train.accumulate_steps = 2
  config.train.num_steps = config.train.checkpoint_every = 4
  config.train.log_every = 2
  config_lib.validate(config)  # accumulation is allowed for VQ models
  workdir = str(tmp_path / "run")
  record = train_and_evaluate(config, workdir)
  assert record["step"] == 4 and math.isfinite(record["log_px"])

  model = build_model(config.model, SHAPE)
  optimizer, _ = state_lib.make_optimizer(config.train)
  target = state_lib.init_state(model, optimizer, SHAPE, jax.random.key(1))
  checkpoints = Checkpoints(workdir, read_only=True)
  try:
    state = checkpoints.restore(4, target)
  finally:
    checkpoints.close()
  assert int(state.step) == 4
  quantizer = state.model_state[CODEBOOK]["quantizer"]
  assert set(quantizer) == set(_STATISTICS)
  assert float(quantizer["initialized"]) == 1.0  # trained: the data initialization happened
  assert quantizer["ema_count"].shape == (config.model.num_codes,)
  assert not np.array_equal(quantizer["codebook"], target.model_state[CODEBOOK]["quantizer"][
      "codebook"])
  paths = [jax.tree_util.keystr(path)
           for path, _ in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]]
  assert paths and not [p for p in paths if any(name in p for name in _STATISTICS)], paths
  assert "quantizer" not in state.params
  # The optimizer state mirrors the parameters only: Adam's moments have the parameters' shapes.
  param_shapes = sorted(str(a.shape) for a in jax.tree.leaves(state.params))
  opt_shapes = sorted(str(a.shape) for a in jax.tree.leaves(state.opt_state) if a.ndim)
  assert opt_shapes == sorted(param_shapes * 2)
