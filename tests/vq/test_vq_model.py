"""The VQ-VAE model: where each loss term's gradient goes, its bound, and the trainer's handling of
its codebook (replaced through `param_updates`, kept on a skipped update) and metrics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvae.models.vqvae import VQVAE
from jaxvae.train import state as state_lib

SHAPE = (8, 8, 1)
_rng = np.random.default_rng(0)
X = jnp.asarray(_rng.integers(0, 2, size=(6,) + SHAPE), jnp.float32)
KEYS = jax.random.split(jax.random.key(0), (3, 6))


def _model(update="ema"):
  init = "kmeans" if update == "ema" else "random"
  return VQVAE(SHAPE, num_codes=16, code_dim=4, channels=(8,), codebook_update=update,
               codebook_init=init, restart_dead_codes=update == "ema")


def _norms(tree):
  return {name: float(optax.tree.norm(tree[name])) for name in ("encoder", "decoder")} | {
      "codebook": float(jnp.linalg.norm(tree["quantizer"]["codebook"]))}


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_each_term_moves_only_what_it_should(update):
  model = _model(update)
  params = jax.jit(model.init)(jax.random.key(1), X, KEYS)["params"]

  def term(name):
    def f(params):
      log_weights = model.apply({"params": params}, X, KEYS, method=model.log_weights)
      if name == "reconstruction":
        return -jnp.sum(log_weights.log_likelihood[0])
      return jnp.sum(log_weights.penalty)
    return _norms(jax.jit(jax.grad(f))(params))

  reconstruction, penalty = term("reconstruction"), term("penalty")
  # Reconstruction: the decoder, and the encoder through the straight-through estimator.
  assert reconstruction["decoder"] > 0 and reconstruction["encoder"] > 0
  assert reconstruction["codebook"] == 0
  # Commitment (+ codebook term for 'loss'): the encoder; the codebook only when it is trained.
  assert penalty["encoder"] > 0 and penalty["decoder"] == 0
  assert (penalty["codebook"] > 0) == (update == "loss")


def test_commitment_only_penalty_value_matches_numpy():
  model = _model("ema")
  params = jax.jit(model.init)(jax.random.key(1), X, KEYS)["params"]

  def pieces(module):
    z_e = module.encoder(X)
    return z_e, module.log_weights(X, KEYS)

  z_e, log_weights = jax.jit(lambda p: model.apply({"params": p}, method=pieces))(params)
  z = np.float64(z_e).reshape(6, -1, 4)
  codebook = np.float64(params["quantizer"]["codebook"])
  nearest = codebook[np.argmin(((z[:, :, None] - codebook) ** 2).sum(-1), -1)]
  np.testing.assert_allclose(log_weights.penalty, 0.25 * ((z - nearest) ** 2).sum((1, 2)),
                             rtol=1e-4)


def test_log_weight_is_the_bound_with_the_uniform_code_prior():
  model = _model()
  params = jax.jit(model.init)(jax.random.key(1), X, KEYS)["params"]
  log_weights = jax.jit(lambda p: model.apply({"params": p}, X, KEYS))(params)
  codes = model.apply({"params": params}, X, method=model.encode)
  log_px_given_z = model.apply({"params": params}, X, codes, method=model.log_likelihood)
  logits = np.float64(model.apply({"params": params}, codes, method=model.decode))[..., 0]
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
  from jaxvae import config as config_lib

  train = config_lib.get_config().train
  optimizer, schedule = state_lib.make_optimizer(train)
  state = state_lib.init_state(model, optimizer, SHAPE, jax.random.key(0))
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train))
  new, metrics = step(state, {"image": X})
  quantizer = new.params["quantizer"]
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
