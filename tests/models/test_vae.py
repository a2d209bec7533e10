"""The VAE's log weights and per-example ELBO against a NumPy float64 computation by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae.models import build_model


def VAE(data_shape, kind="vae", **section):  # noqa: N802  (the model of a config section)
  model = config_lib.model_config(kind)
  model.update(section)
  return build_model(model, data_shape)


def _log_sigmoid(a):
  return -np.logaddexp(0.0, -a)


def test_log_weights_and_elbo_match_numpy_float64():
  model = VAE(data_shape=(2, 3, 1), latent_dim=3, hidden_sizes=(5,))
  x = (np.random.default_rng(0).random((4, 2, 3, 1)) < 0.5).astype(np.float32)
  keys = jax.random.split(jax.random.key(1), (2, 4))  # K = 2 samples of B = 4 examples
  params = model.init(jax.random.key(0), x, keys)["params"]
  terms = jax.jit(lambda p: model.apply({"params": p}, x, keys, method=model.log_weights))(params)

  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  dense = lambda layer, h: h @ layer["kernel"] + layer["bias"]  # noqa: E731
  xf = x.reshape(4, 6).astype(np.float64)
  enc = dense(p["posterior_head"]["head"], np.tanh(dense(p["encoder"]["Dense_0"], xf)))
  mean, log_var = enc[:, :3], enc[:, 3:]
  eps = np.array([[np.asarray(jax.random.normal(keys[k, b], (3,))) for b in range(4)]
                  for k in range(2)], np.float64)  # the draws the model makes
  z = mean + np.exp(0.5 * log_var) * eps  # [K, B, L]
  decoder = p["decoder"]["MLP_0"]
  logits = dense(decoder["Dense_1"], np.tanh(dense(decoder["Dense_0"], z)))
  log_lik = np.sum(xf * _log_sigmoid(logits) + (1 - xf) * _log_sigmoid(-logits), -1)
  log_prior = np.sum(-0.5 * (math.log(2 * math.pi) + z**2), -1)
  log_post = np.sum(-0.5 * (math.log(2 * math.pi) + log_var + eps**2), -1)

  np.testing.assert_allclose(terms.log_likelihood, log_lik, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(terms.log_prior, log_prior, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(terms.log_posterior, log_post, rtol=1e-5, atol=1e-5)
  expected_elbo = np.mean(log_lik + log_prior - log_post, axis=0)  # [B]
  np.testing.assert_allclose(losses.elbo(terms.values), expected_elbo, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(jnp.mean(terms.kl, 0), np.mean(log_post - log_prior, 0), atol=1e-5)


def test_sample_and_reconstruct_shapes_and_range():
  model = VAE(data_shape=(8, 8, 1), latent_dim=2, hidden_sizes=(4,))
  x = jnp.full((3, 8, 8, 1), 0.5)
  params = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (1, 3)))
  samples = model.apply(params, jax.random.key(2), 5, method=model.sample)
  recon = model.apply(params, x, method=model.reconstruct)
  assert samples.shape == (5, 8, 8, 1) and recon.shape == x.shape
  assert bool(jnp.all((samples >= 0) & (samples <= 1))) and bool(jnp.all((recon >= 0) & (recon <= 1)))


def test_conditional_vae_uses_labels_and_samples_each_class():
  model = VAE(data_shape=(4,), kind="cvae", latent_dim=2, hidden_sizes=(8,), num_classes=3)
  x = jnp.full((2, 4), 1.0)
  keys = jax.random.split(jax.random.key(1), (1, 2))
  params = model.init(jax.random.key(0), x, keys, jnp.zeros(2, jnp.int32))
  lw = lambda labels: model.apply(params, x, keys, labels).values  # noqa: E731
  assert not np.allclose(lw(jnp.array([0, 0])), lw(jnp.array([1, 2])))
  cycled = model.apply(params, jax.random.key(2), 6, method=model.sample)
  explicit = model.apply(params, jax.random.key(2), 6, jnp.array([0, 1, 2, 0, 1, 2]),
                         method=model.sample)
  np.testing.assert_array_equal(cycled, explicit)
  other = model.apply(params, jax.random.key(2), 6, jnp.zeros(6, jnp.int32), method=model.sample)
  assert not np.allclose(cycled[1:3], other[1:3])
  with pytest.raises(UserError, match="needs the labels"):  # a conditional VAE needs labels
    model.apply(params, x, keys)
  with pytest.raises(UserError, match="needs the labels"):
    model.apply(params, x, method=model.reconstruct)


@pytest.mark.parametrize("image_shape, channels", [((28, 28, 1), (8, 8)), ((32, 32, 3), (4, 4, 8)),
                                                   ((64, 64, 3), (4, 4, 4, 8))])
def test_resnet_encoder_decoder_shapes(image_shape, channels):
  model = VAE(data_shape=image_shape, latent_dim=3, hidden_sizes=(16,), network="resnet",
              channels=channels, activation="relu", likelihood="discretized_logistic",
              num_mixtures=2)
  x = jnp.full((2,) + image_shape, 0.5)
  keys = jax.random.split(jax.random.key(1), (3, 2))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, keys))
  lw = jax.eval_shape(lambda v: model.apply(v, x, keys).values, variables)
  assert lw.shape == (3, 2)
  samples = jax.eval_shape(
      lambda v: model.apply(v, jax.random.key(2), 5, method=model.sample), variables)
  assert samples.shape == (5,) + image_shape
