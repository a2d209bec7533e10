"""Flow log-determinants against `jax.jacfwd`, and the MADE masks' autoregressive property."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae.models import flows
from jaxvae.models.posteriors import IAFPosterior, PlanarFlowPosterior


def _slogdet(f, z):
  return jax.jit(lambda v: jnp.linalg.slogdet(jax.jacfwd(f)(v))[1])(z)


@pytest.mark.parametrize("wu_sign", [1.0, -1.0])
def test_planar_flow_log_det_matches_jacobian(wu_sign):
  rng = np.random.default_rng(0)
  z, u, w = (jnp.asarray(rng.normal(size=3), jnp.float32) for _ in range(3))
  u = wu_sign * 5.0 * jnp.sign(jnp.dot(w, u)) * u  # large |w.u| of either sign: u_hat must fix it
  b = jnp.float32(0.3)
  fz, log_det = jax.jit(flows.planar_flow)(z, u, w, b)
  with jax.default_matmul_precision("highest"):
    expected = _slogdet(lambda v: flows.planar_flow(v, u, w, b)[0], z)
  np.testing.assert_allclose(log_det, expected, rtol=1e-5, atol=1e-5)
  assert fz.shape == z.shape and np.isfinite(float(log_det))


@pytest.mark.parametrize("module", [PlanarFlowPosterior(3, 3), IAFPosterior(3, 3, (8, 8))],
                         ids=["planar", "iaf"])
def test_amortized_flow_transforms_log_det_matches_jacobian(module):
  h = jax.random.normal(jax.random.key(0), (1, 5))
  z = jax.random.normal(jax.random.key(1), (1, 3))
  params = module.init(jax.random.key(2), h, jax.random.split(jax.random.key(3), (1, 1)),
                       method=lambda m, h, keys: m.sample(m.parameters(h), keys))
  # Perturb every parameter so the flows are far from the identity.
  params = jax.tree.map(lambda p: p + 0.5 * jax.random.normal(jax.random.key(4), p.shape), params)
  post = module.apply(params, h, method=module.parameters)
  transform = lambda v: module.apply(params, v[None], post.flow,  # noqa: E731
                                     method=module.transform)
  _, log_det = jax.jit(transform)(z[0])
  with jax.default_matmul_precision("highest"):
    expected = _slogdet(lambda v: transform(v)[0][0], z[0])
  np.testing.assert_allclose(log_det[0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("num_inputs", [1, 2, 5])
def test_made_output_i_depends_only_on_inputs_before_i(num_inputs):
  net = flows.AutoregressiveNet((7, 7))
  z, context = jnp.ones((num_inputs,)), jnp.ones((3,))
  params = net.init(jax.random.key(0), z, context)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(1), p.shape), params)
  for output in range(2):
    jac = jax.jit(jax.jacfwd(lambda v: net.apply(params, v, context)[output]))(z)  # [L, L]
    dependent = np.abs(np.asarray(jac)) > 0
    assert not np.any(np.triu(dependent)), "output i must not depend on inputs >= i"
    if num_inputs > 1:
      assert dependent[1:].any(), "a MADE that ignores its inputs is not autoregressive"
