"""VQ-VAE: nearest codes against a NumPy brute force, and gradient routing of each term."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import losses

_rng = np.random.default_rng(0)
X = jnp.asarray(_rng.normal(size=(4, 6)), jnp.float32)  # [B, input dim]
ENCODER = jnp.asarray(_rng.normal(size=(6, 3, 2)), jnp.float32)  # x -> z_e [B, L=3, D=2]
CODEBOOK = jnp.asarray(_rng.normal(size=(5, 2)), jnp.float32)  # [N, D]
DECODER = jnp.asarray(_rng.normal(size=(3, 2, 6)), jnp.float32)


def _encode(encoder):
  return jnp.einsum("bi,ild->bld", X, encoder)


def _reconstruction_log_likelihood(z_q):
  return -jnp.sum(jnp.square(X - jnp.einsum("bld,ldi->bi", z_q, DECODER)), -1)  # [B]


def test_nearest_codes_match_numpy_brute_force():
  z_e = jnp.asarray(_rng.normal(size=(7, 3, 2)), jnp.float32)
  codes = jax.jit(losses.nearest_codes)(z_e, CODEBOOK)
  dists = np.sum((np.float64(z_e)[..., None, :] - np.float64(CODEBOOK)) ** 2, -1)
  np.testing.assert_array_equal(codes, np.argmin(dists, -1))
  q = losses.vector_quantize(z_e, CODEBOOK)
  np.testing.assert_array_equal(q.codewords, np.float32(CODEBOOK)[np.argmin(dists, -1)])
  np.testing.assert_allclose(q.z_q, q.codewords, atol=1e-6)  # forward value is the codeword


def _grads(term):
  """Gradients of `sum(term(z_e, quantized))` w.r.t. (encoder, codebook)."""
  def f(encoder, codebook):
    z_e = _encode(encoder)
    return jnp.sum(term(z_e, losses.vector_quantize(z_e, codebook)))
  return jax.jit(jax.grad(f, argnums=(0, 1)))(ENCODER, CODEBOOK)


def test_codebook_term_moves_only_the_codebook():
  g_enc, g_code = _grads(lambda z_e, q: losses.vq_codebook_loss(z_e, q.codewords))
  np.testing.assert_array_equal(g_enc, 0.0)
  # d/d e_n sum |sg(z_e) - e|^2 = sum over vectors assigned to n of 2 (e_n - z_e).
  z_e = np.float64(_encode(ENCODER)).reshape(-1, 2)
  codes = np.asarray(losses.nearest_codes(_encode(ENCODER), CODEBOOK)).ravel()
  expected = np.zeros((5, 2))
  np.add.at(expected, codes, 2 * (np.float64(CODEBOOK)[codes] - z_e))
  np.testing.assert_allclose(g_code, expected, rtol=1e-5, atol=1e-5)


def test_commitment_term_moves_only_the_encoder():
  g_enc, g_code = _grads(lambda z_e, q: losses.vq_commitment_loss(z_e, q.codewords))
  np.testing.assert_array_equal(g_code, 0.0)
  assert np.all(np.isfinite(g_enc)) and np.any(g_enc != 0)
  # Its gradient is that of |z_e - e|^2 with e held fixed.
  e = losses.vector_quantize(_encode(ENCODER), CODEBOOK).codewords
  expected = jax.grad(lambda a: jnp.sum(jnp.square(_encode(a) - e)))(ENCODER)
  np.testing.assert_allclose(g_enc, expected, rtol=1e-5, atol=1e-5)


def test_reconstruction_gradient_passes_straight_through_to_the_encoder():
  g_enc, g_code = _grads(lambda z_e, q: _reconstruction_log_likelihood(q.z_q))
  np.testing.assert_array_equal(g_code, 0.0)
  # d recon / d encoder = (d z_e / d encoder)^T (d recon / d z evaluated at z = e).
  e = losses.vector_quantize(_encode(ENCODER), CODEBOOK).codewords
  g_z = jax.grad(lambda z: jnp.sum(_reconstruction_log_likelihood(z)))(e)
  _, vjp = jax.vjp(_encode, ENCODER)
  np.testing.assert_allclose(g_enc, vjp(g_z)[0], rtol=1e-5, atol=1e-4)


def test_vq_vae_loss_value_and_gradient_decomposition():
  beta = 0.25

  def loss(encoder, codebook):
    z_e = _encode(encoder)
    q = losses.vector_quantize(z_e, codebook)
    return losses.vq_vae_loss(_reconstruction_log_likelihood(q.z_q), z_e, q.codewords, beta)

  value = loss(ENCODER, CODEBOOK)
  z_e = _encode(ENCODER)
  e = losses.vector_quantize(z_e, CODEBOOK).codewords
  sq = np.sum(np.square(np.float64(z_e) - np.float64(e)), (-2, -1))
  np.testing.assert_allclose(value, -np.float64(_reconstruction_log_likelihood(e)) + (1 + beta) * sq,
                             rtol=1e-5)
  g_enc, g_code = jax.grad(lambda a, c: jnp.sum(loss(a, c)), argnums=(0, 1))(ENCODER, CODEBOOK)
  recon_enc, _ = _grads(lambda z, q: -_reconstruction_log_likelihood(q.z_q))
  commit_enc, _ = _grads(lambda z, q: losses.vq_commitment_loss(z, q.codewords))
  _, code_code = _grads(lambda z, q: losses.vq_codebook_loss(z, q.codewords))
  np.testing.assert_allclose(g_enc, recon_enc + beta * commit_enc, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(g_code, code_code, rtol=1e-5, atol=1e-5)


def test_vq_vae_loss_without_a_position_axis_is_refused():
  z_e = _encode(ENCODER)[:, 0]  # [B, D]: one latent vector per example, no position axis
  e = losses.vector_quantize(z_e, CODEBOOK).codewords
  with pytest.raises(ValueError, match=r"z_e has shape \(4, 2\), log_likelihood \(4,\); z_e must "
                                       r"be \[4, L, D\]"):
    losses.vq_vae_loss(jnp.zeros(4), z_e, e)
  with pytest.raises(ValueError, match="z_e has shape"):  # batch axes that differ
    losses.vq_vae_loss(jnp.zeros(3), _encode(ENCODER), _encode(ENCODER))
  with pytest.raises(AssertionError, match="shape"):  # e of another shape than z_e
    losses.vq_vae_loss(jnp.zeros(4), _encode(ENCODER), _encode(ENCODER)[:, :2])
  with pytest.raises(AssertionError):  # codes of another size than the codebook's
    losses.vector_quantize(_encode(ENCODER), CODEBOOK[:, :1])


def test_vq_vae_loss_sums_over_every_position_axis_of_a_grid():
  z_e = jnp.asarray(_rng.normal(size=(4, 2, 3, 2)), jnp.float32)  # [B, H, W, D]
  e = losses.vector_quantize(z_e, CODEBOOK).codewords
  log_likelihood = jnp.arange(4.0)
  chex.assert_trees_all_close(losses.vq_vae_loss(log_likelihood, z_e, e),
                              losses.vq_vae_loss(log_likelihood, z_e.reshape(4, 6, 2),
                                                 e.reshape(4, 6, 2)))
