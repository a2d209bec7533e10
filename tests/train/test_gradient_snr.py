"""The gradient signal-to-noise diagnostic against gradients collected one draw at a time and a
NumPy SNR, and its split into the encoder's and the decoder's parameter groups."""

import jax
import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.runtime.trained import init_variables
from jaxvae.train import diagnostics
from jaxvae.train import state as state_lib


def test_per_parameter_snr_is_mean_over_std():
  g = np.random.default_rng(0).normal(loc=[1.0, -2.0, 0.0], size=(500, 3))
  expected = np.abs(g.mean(0)) / g.std(0, ddof=1)
  np.testing.assert_allclose(diagnostics.per_parameter_snr(g), expected, rtol=1e-12)
  assert diagnostics.per_parameter_snr(np.zeros((4, 2))).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("objective", ["iwae", "iwae_dreg"])
def test_gradient_snr_matches_gradients_taken_one_draw_at_a_time(objective):
  config = config_lib.get_config("smoke")
  config.train.objective, config.train.num_samples = objective, 4
  model = build_model(config.model, (8, 8, 1))
  variables = init_variables(model, (8, 8, 1), jax.random.key(0))
  images = (np.random.default_rng(1).random((6, 8, 8, 1)) < 0.3).astype(np.float32)
  options = state_lib.StepOptions.from_config(config.train)
  snr = diagnostics.gradient_snr(model, variables, {"image": images}, options, jax.random.key(2),
                                 num_draws=12)
  assert set(snr["encoder"]) == {"encoder", "posterior_head"} and set(snr["decoder"]) == {"decoder"}

  def grad(key):
    keys = jax.random.split(key, (4, 6))
    return jax.grad(lambda p: state_lib.loss_and_metrics(
        p, {}, images, None, keys, model=model, options=options, beta=1.0)[0])(variables["params"])

  grads = [grad(k) for k in jax.random.split(jax.random.key(2), 12)]
  for part in ("encoder", "decoder"):
    for group, value in snr[part].items():
      per_draw = [np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(g[group])])
                  for g in grads]
      np.testing.assert_allclose(value, diagnostics.per_parameter_snr(np.stack(per_draw)).mean(),
                                 rtol=1e-4)
