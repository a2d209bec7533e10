"""The Ladder VAE's log weights and per-layer KLs against a NumPy float64 re-implementation."""

import math

import jax
import numpy as np
from scipy import stats

from jaxvae.models.hvae import HierarchicalVAE

LATENT_DIMS = (3, 2, 2)


def _dense(layer, h):
  return h @ layer["kernel"] + layer["bias"]


def _mlp(p, h, num_hidden):
  for i in range(num_hidden):
    h = np.tanh(_dense(p[f"Dense_{i}"], h))
  return h


def test_log_weights_and_layer_kl_match_numpy_float64():
  model = HierarchicalVAE(data_shape=(5,), latent_dims=LATENT_DIMS, hidden_sizes=(4,),
                          upper_hidden_sizes=(3,))
  rng = np.random.default_rng(0)
  x = (rng.random((2, 5)) < 0.5).astype(np.float32)
  keys = jax.random.split(jax.random.key(1), (2, 2))  # K = 2, B = 2
  params = model.init(jax.random.key(0), x, keys)["params"]
  terms = jax.jit(lambda p: model.apply({"params": p}, x, keys))(params)

  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  num_layers = len(LATENT_DIMS)
  d = _mlp(p["encoder"], x.astype(np.float64), 1)
  bottom_up = []
  for layer in range(num_layers):
    if layer:
      d = _mlp(p[f"up_{layer - 1}"], d, 1)
    out = _dense(p[f"bottom_up_heads_{layer}"], d)
    bottom_up.append(np.split(out, 2, -1))
  log_lik, log_prior, log_post = np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))
  layer_kl = np.zeros((num_layers, 2, 2))
  for k in range(2):
    for b in range(2):
      layer_keys = jax.random.split(keys[k, b], num_layers)
      z = None
      for layer in reversed(range(num_layers)):
        mean_hat, log_var_hat = (a[b] for a in bottom_up[layer])
        if layer == num_layers - 1:
          mean, var = mean_hat, np.exp(log_var_hat)
          prior_mean, prior_var = np.zeros_like(mean), np.ones_like(mean)
        else:
          prior_mean, prior_log_var = np.split(
              _dense(p[f"top_down_{layer}"]["Dense_1"], _mlp(p[f"top_down_{layer}"], z, 1)), 2)
          prior_var, var_hat = np.exp(prior_log_var), np.exp(log_var_hat)
          var = 1.0 / (1.0 / var_hat + 1.0 / prior_var)  # product of two Gaussian densities
          mean = var * (mean_hat / var_hat + prior_mean / prior_var)
        eps = np.asarray(jax.random.normal(layer_keys[layer], (LATENT_DIMS[layer],)), np.float64)
        z = mean + np.sqrt(var) * eps
        lq = stats.norm.logpdf(z, mean, np.sqrt(var)).sum()
        lp = stats.norm.logpdf(z, prior_mean, np.sqrt(prior_var)).sum()
        log_post[k, b] += lq
        log_prior[k, b] += lp
        layer_kl[layer, k, b] = lq - lp
      logits = _dense(p["decoder"]["MLP_0"]["Dense_1"], _mlp(p["decoder"]["MLP_0"], z, 1))
      xb = x[b].astype(np.float64)
      log_lik[k, b] = np.sum(xb * -np.logaddexp(0, -logits) + (1 - xb) * -np.logaddexp(0, logits))

  np.testing.assert_allclose(terms.log_likelihood, log_lik, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(terms.log_prior, log_prior, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(terms.log_posterior, log_post, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(terms.layer_kl, layer_kl, rtol=1e-5, atol=1e-5)
  assert terms.layer_kl.shape == (num_layers, 2, 2)


def test_ancestral_samples_and_reconstructions_have_the_data_shape():
  model = HierarchicalVAE(data_shape=(4, 4, 1), latent_dims=(3, 2), hidden_sizes=(8,),
                          upper_hidden_sizes=(4,))
  x = np.full((3, 4, 4, 1), 0.5, np.float32)
  params = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (1, 3)))
  samples = model.apply(params, jax.random.key(2), 5, method=model.sample)
  recon = model.apply(params, x, method=model.reconstruct)
  assert samples.shape == (5, 4, 4, 1) and recon.shape == x.shape
  assert math.isfinite(float(samples.sum())) and math.isfinite(float(recon.sum()))
