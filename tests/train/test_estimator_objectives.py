"""The trainer's estimator objectives on real models, against gradients assembled independently.

STL's gradient is the ELBO's total gradient minus its score term `d/dphi log q_phi(z)` at fixed z;
the score term is taken here by differentiating `posterior_log_prob` at draws held constant, so
the check covers q's density at draws for every family that offers it (the IAF's by inverting the
flow) and hierarchies (every layer's q). DReG's and PIWAE's gradients split by parameter: the
decoder's is IWAE's, the encoder's DReG's surrogate or MIWAE's, each taken here alone.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import config as config_lib
from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae.losses import estimators
from jaxvae.models import build_model
from jaxvae.runtime.trained import init_variables
from jaxvae.train import loop
from jaxvae.train import state as state_lib

SHAPE = (8, 8, 1)
X = (np.random.default_rng(0).random((5,) + SHAPE) < 0.3).astype(np.float32)


def _model(kind="vae", **section):
  config = config_lib.get_config("smoke", model=kind)
  config.model.update(section)
  model = build_model(config.model, SHAPE)
  params = init_variables(model, SHAPE, jax.random.key(0))["params"]
  # Away from the initialization (flows start near the identity), so that every term matters.
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape), params)
  return config, model, params


def _grad(model, params, objective, keys, **options):
  options = state_lib.StepOptions(objective=objective, num_samples=keys.shape[0], **options)
  return jax.grad(lambda p: state_lib.loss_and_metrics(
      p, {}, X, None, keys, model=model, options=options, beta=1.0)[0])(params)


def _close(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=2e-4, atol=2e-6), a, b)


CASES = [("vae", {"posterior": "diag"}), ("vae", {"posterior": "full_cov"}),
         ("vae", {"posterior": "iaf", "num_flows": 2}), ("hvae", {"inference": "top_down"}),
         ("hvae", {"inference": "bottom_up"})]


@pytest.mark.parametrize("kind, section", CASES)
def test_stl_is_the_total_gradient_minus_the_score_term(kind, section):
  _, model, params = _model(kind, **section)
  keys = jax.random.split(jax.random.key(2), (3, 5))

  def elbo(p):
    return jnp.mean(losses.elbo(model.apply({"params": p}, X, keys,
                                            method=model.log_weights).values))

  z = jax.lax.stop_gradient(model.apply({"params": params}, X, keys,
                                        method=model.log_weights_and_latents)[1])
  score = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, X, z,
                                                  method=model.posterior_log_prob)))(params)
  expected = jax.tree.map(lambda total, s: -(total + s), jax.grad(elbo)(params), score)
  _close(_grad(model, params, "elbo_stl", keys), expected)


@pytest.mark.parametrize("objective", ["iwae_dreg", "piwae"])
@pytest.mark.parametrize("kind, section", [("vae", {"posterior": "iaf", "num_flows": 2}),
                                           ("hvae", {"inference": "bottom_up"})])
def test_split_objectives_give_the_decoder_iwae_and_the_encoder_its_own(kind, section,
                                                                         objective):
  _, model, params = _model(kind, **section)
  keys = jax.random.split(jax.random.key(3), (4, 5))
  groups = 2 if objective == "piwae" else 1

  def values(p):
    return model.apply({"params": p}, X, keys, method=model.log_weights).values

  def encoder_objective(p):
    if objective == "piwae":
      return jnp.mean(estimators.miwae(values(p), groups))
    log_weights, z = model.apply({"params": p}, X, keys, method=model.log_weights_and_latents)
    log_q = model.apply(jax.lax.stop_gradient({"params": p}), X, z,
                        method=model.posterior_log_prob)
    frozen = log_weights.log_likelihood + log_weights.log_prior - log_q
    return jnp.mean(estimators.dreg_iwae(frozen))

  decoder = jax.grad(lambda p: -jnp.mean(losses.iwae_bound(values(p))))(params)
  encoder = jax.grad(lambda p: -encoder_objective(p))(params)
  got = _grad(model, params, objective, keys, num_groups=groups)
  inference = set(model.inference_modules)
  for name in params:
    _close(got[name], (encoder if name in inference else decoder)[name])


@pytest.mark.parametrize("objective, changes, capability", [
    ("elbo_stl", {"posterior": "planar_flow"}, "REPARAMETERIZED"),
    ("iwae_dreg", {"posterior": "mixture"}, "REPARAMETERIZED"),
    ("iwae_dreg", {"prior": "vamp", "num_pseudo_inputs": 3}, "SEPARATE_INFERENCE"),
])
def test_an_objective_a_model_cannot_take_is_one_clear_error(objective, changes, capability):
  config, model, _ = _model("vae", **changes)
  config.train.objective = objective
  with pytest.raises(UserError, match=f"needs capability {capability}"):
    loop.check_objective(model, config.train)


def test_dreg_and_piwae_refuse_the_ladder_vae_whose_q_shares_p_s_networks():
  config, model, _ = _model("hvae", inference="top_down")
  config.train.objective = "iwae_dreg"
  with pytest.raises(UserError, match="SEPARATE_INFERENCE"):
    loop.check_objective(model, config.train)
  config.train.objective = "elbo_stl"
  loop.check_objective(model, config.train)  # STL needs no split
