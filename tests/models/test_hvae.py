"""The hierarchical VAE's log weights and per-layer KLs, top-down (Ladder VAE) and bottom-up inference,
against a NumPy float64 re-implementation."""

import math

import jax
import numpy as np
import pytest
from scipy import stats

from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.models.hvae import HierarchicalVAE


def _hvae(data_shape, **section) -> HierarchicalVAE:
  model = config_lib.model_config("hvae")
  model.update(section)
  return build_model(model, data_shape)

LATENT_DIMS = (3, 2, 2)


def _dense(layer, h):
  return h @ layer["kernel"] + layer["bias"]


def _mlp(p, h, num_hidden):
  for i in range(num_hidden):
    h = np.tanh(_dense(p[f"Dense_{i}"], h))
  return h


def _numpy_log_weights(p, x, keys, inference):
  """float64 log-weight terms `[K, B]` and layer KLs `[L, K, B]`, one (sample, example) at a time."""
  num_layers = len(LATENT_DIMS)
  d = _mlp(p["encoder"], x.astype(np.float64), 1)
  bottom_up = []  # top-down inference: the deterministic pass's per-layer estimates
  for layer in range(num_layers if inference == "top_down" else 0):
    if layer:
      d = _mlp(p[f"up_{layer - 1}"], d, 1)
    bottom_up.append(np.split(_dense(p[f"bottom_up_heads_{layer}"], d), 2, -1))
  num_k, num_b = keys.shape
  log_lik, log_prior, log_post = np.zeros((num_k, num_b)), np.zeros((num_k, num_b)), np.zeros(
      (num_k, num_b))
  layer_kl = np.zeros((num_layers, num_k, num_b))

  def prior(layer, z_above):
    if layer == num_layers - 1:
      return np.zeros(LATENT_DIMS[layer]), np.ones(LATENT_DIMS[layer])
    top_down = p[f"top_down_{layer}"]
    mean, log_var = np.split(_dense(top_down["Dense_1"], _mlp(top_down, z_above, 1)), 2)
    return mean, np.exp(log_var)

  for k in range(num_k):
    for b in range(num_b):
      layer_keys = jax.random.split(keys[k, b], num_layers)
      eps = [np.asarray(jax.random.normal(layer_keys[layer], (LATENT_DIMS[layer],)), np.float64)
             for layer in range(num_layers)]
      z, q = [None] * num_layers, [None] * num_layers
      if inference == "top_down":
        for layer in reversed(range(num_layers)):
          mean_hat, log_var_hat = (a[b] for a in bottom_up[layer])
          if layer == num_layers - 1:
            mean, var = mean_hat, np.exp(log_var_hat)
          else:
            prior_mean, prior_var = prior(layer, z[layer + 1])
            var_hat = np.exp(log_var_hat)
            var = 1.0 / (1.0 / var_hat + 1.0 / prior_var)  # product of two Gaussian densities
            mean = var * (mean_hat / var_hat + prior_mean / prior_var)
          z[layer], q[layer] = mean + np.sqrt(var) * eps[layer], (mean, var)
      else:
        h = _mlp(p["encoder"], x[b].astype(np.float64), 1)
        for layer in range(num_layers):
          if layer:
            h = _mlp(p[f"up_{layer - 1}"], z[layer - 1], 1)
          mean, log_var = np.split(_dense(p[f"bottom_up_heads_{layer}"], h), 2)
          var = np.exp(log_var)
          z[layer], q[layer] = mean + np.sqrt(var) * eps[layer], (mean, var)
      for layer in range(num_layers):
        lq = stats.norm.logpdf(z[layer], q[layer][0], np.sqrt(q[layer][1])).sum()
        prior_mean, prior_var = prior(layer, z[layer + 1] if layer + 1 < num_layers else None)
        lp = stats.norm.logpdf(z[layer], prior_mean, np.sqrt(prior_var)).sum()
        log_post[k, b] += lq
        log_prior[k, b] += lp
        layer_kl[layer, k, b] = lq - lp
      logits = _dense(p["decoder"]["MLP_0"]["Dense_1"], _mlp(p["decoder"]["MLP_0"], z[0], 1))
      xb = x[b].astype(np.float64)
      log_lik[k, b] = np.sum(xb * -np.logaddexp(0, -logits) + (1 - xb) * -np.logaddexp(0, logits))
  return log_lik, log_prior, log_post, layer_kl


@pytest.mark.parametrize("inference", ["top_down", "bottom_up"])
def test_log_weights_and_layer_kl_match_numpy_float64(inference):
  model = _hvae((5,), latent_dims=LATENT_DIMS, hidden_sizes=(4,), upper_hidden_sizes=(3,),
                inference=inference)
  rng = np.random.default_rng(0)
  x = (rng.random((2, 5)) < 0.5).astype(np.float32)
  keys = jax.random.split(jax.random.key(1), (2, 2))  # K = 2, B = 2
  params = model.init(jax.random.key(0), x, keys)["params"]
  terms, layer_kl, zs = jax.jit(lambda p: model.apply({"params": p}, x, keys,
                                                      method=model.layer_log_weights))(params)
  # q's density at its own draws, from the draws alone, is the sampler's (what STL and DReG use).
  np.testing.assert_allclose(model.apply({"params": params}, x, zs,
                                         method=model.posterior_log_prob),
                             terms.log_posterior, rtol=1e-5, atol=1e-5)
  expected = _numpy_log_weights(jax.tree.map(lambda a: np.asarray(a, np.float64), params), x, keys,
                                inference)
  for got, want in zip((terms.log_likelihood, terms.log_prior, terms.log_posterior,
                        layer_kl), expected):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert layer_kl.shape == (len(LATENT_DIMS), 2, 2)
  # `log_weights` gives the same terms, and in training (`metrics` mutable) each layer's mean KL.
  same, written = model.apply({"params": params}, x, keys, mutable=["metrics"])
  for got, want in zip(same, terms):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  for layer in range(len(LATENT_DIMS)):
    np.testing.assert_allclose(written["metrics"][f"kl_layer_{layer}"],
                               np.mean(expected[3][layer]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inference", ["top_down", "bottom_up"])
def test_ancestral_samples_and_reconstructions_have_the_data_shape(inference):
  model = _hvae((4, 4, 1), latent_dims=(3, 2), hidden_sizes=(8,), upper_hidden_sizes=(4,),
                inference=inference)
  x = np.full((3, 4, 4, 1), 0.5, np.float32)
  params = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (1, 3)))
  samples = model.apply(params, jax.random.key(2), 5, method=model.sample)
  recon = model.apply(params, x, method=model.reconstruct)
  assert samples.shape == (5, 4, 4, 1) and recon.shape == x.shape
  assert math.isfinite(float(samples.sum())) and math.isfinite(float(recon.sum()))
