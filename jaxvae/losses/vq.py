"""VQ-VAE: nearest-code quantization, the straight-through estimator and the VQ-VAE loss
(van den Oord et al., 2017, "Neural Discrete Representation Learning", eq. 3).

Shapes: encoder outputs `z_e [..., L, D]` are L latent vectors of size D per example (a `[H, W, D]`
grid flattened to `L = H * W`); the codebook is `[N, D]`; codes are integers `[..., L]`.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


class Quantized(NamedTuple):
  """The result of `vector_quantize`."""

  z_q: jax.Array  # [..., D] straight-through output: value e, gradient passed to z_e
  codes: jax.Array  # [...] int32 indices of the nearest codes
  codewords: jax.Array  # [..., D] e = codebook[codes], differentiable w.r.t. the codebook


def nearest_codes(z_e: jax.Array, codebook: jax.Array, chunk_size: int | None = None) -> jax.Array:
  """`argmin_n |z_e - codebook_n|^2`: `[..., D], [N, D] -> [...]` int32 (ties: the lowest n).

  Uses `|e|^2 - 2 z.e` (`|z|^2` does not change the argmin) at `precision='highest'`, so memory is
  `[..., N]`, not `[..., N, D]`; with `chunk_size`, a running minimum over codebook chunks of that
  many codes keeps it at `[..., chunk_size]` (N must be a multiple of `chunk_size`).
  """
  chex.assert_rank(codebook, 2)
  chex.assert_axis_dimension(z_e, -1, codebook.shape[1])

  def distances(chunk):  # [..., C], up to the per-row constant |z|^2
    cross = jnp.einsum("...d,nd->...n", z_e, chunk, precision=jax.lax.Precision.HIGHEST)
    return jnp.sum(jnp.square(chunk), axis=-1) - 2.0 * cross

  num_codes = codebook.shape[0]
  if chunk_size is None or chunk_size >= num_codes:
    return jnp.argmin(distances(codebook), axis=-1).astype(jnp.int32)
  if num_codes % chunk_size:
    raise ValueError(f"chunk_size={chunk_size} must divide the {num_codes} codes")

  def scan_chunk(best, start):
    best_dist, best_code = best
    dist = distances(jax.lax.dynamic_slice_in_dim(codebook, start, chunk_size))
    code = jnp.argmin(dist, axis=-1)
    dist = jnp.take_along_axis(dist, code[..., None], axis=-1)[..., 0]
    better = dist < best_dist  # strict: an earlier chunk wins ties
    return (jnp.where(better, dist, best_dist),
            jnp.where(better, code.astype(jnp.int32) + start, best_code)), None

  init = (jnp.full(z_e.shape[:-1], jnp.inf, z_e.dtype), jnp.zeros(z_e.shape[:-1], jnp.int32))
  starts = jnp.arange(0, num_codes, chunk_size, dtype=jnp.int32)
  return jax.lax.scan(scan_chunk, init, starts)[0][1]


def straight_through(z_e: jax.Array, e: jax.Array) -> jax.Array:
  """`z_q = z_e + sg(e - z_e)`: forward value `e`, gradient `d z_q / d z_e = I`, none to `e`."""
  return z_e + jax.lax.stop_gradient(e - z_e)


def vector_quantize(z_e: jax.Array, codebook: jax.Array,
                    chunk_size: int | None = None) -> Quantized:
  """Quantizes each vector of `z_e [..., D]` to its nearest code of `codebook [N, D]`
  (`chunk_size`: see `nearest_codes`).

  Returns `Quantized(z_q, codes, codewords)`: feed `z_q` to the decoder, and `z_e, codewords` to
  `vq_vae_loss`.
  """
  codes = nearest_codes(jax.lax.stop_gradient(z_e), jax.lax.stop_gradient(codebook), chunk_size)
  codewords = jnp.take(codebook, codes, axis=0)
  return Quantized(straight_through(z_e, codewords), codes, codewords)


def vq_codebook_loss(z_e: jax.Array, e: jax.Array) -> jax.Array:
  """`|sg(z_e) - e|^2` summed over the last axis: `[..., D] -> [...]`; its gradient moves only `e`."""
  chex.assert_equal_shape([z_e, e])
  return jnp.sum(jnp.square(jax.lax.stop_gradient(z_e) - e), axis=-1)


def vq_commitment_loss(z_e: jax.Array, e: jax.Array) -> jax.Array:
  """`|z_e - sg(e)|^2` summed over the last axis: `[..., D] -> [...]`; its gradient moves only `z_e`."""
  chex.assert_equal_shape([z_e, e])
  return jnp.sum(jnp.square(z_e - jax.lax.stop_gradient(e)), axis=-1)


def vq_vae_loss(
    log_likelihood: jax.Array, z_e: jax.Array, e: jax.Array, commitment_cost: float = 0.25
) -> jax.Array:
  """The VQ-VAE loss per example, to minimize: `[...]`.

  `-log p(x | z_q) + sum_{l,d} (sg(z_e) - e)^2 + beta * sum_{l,d} (z_e - sg(e))^2`, where
  `log_likelihood [...]` is the decoder's `log p(x | z_q)` at the straight-through `z_q`,
  `z_e, e [..., L, D]` and `beta = commitment_cost` (0.25 in the paper). Squared errors are summed
  over latents, like the log-likelihood over pixels (the paper's code averages them; rescale
  `commitment_cost` and the codebook term's learning rate to match). Codebook EMA updates
  replace the codebook term: then use `-log_likelihood + commitment_cost * sum vq_commitment_loss`.

  A `[H, W, D]` grid per example may stay unflattened: `z_e, e [..., H, W, D]` (any number of
  position axes, at least one), summed over all of them.

  Example:
    >>> q = vector_quantize(encoder(x), codebook)
    >>> loss = vq_vae_loss(bernoulli_log_prob(x, decoder(q.z_q)), z_e, q.codewords)
  """
  batch = jnp.shape(log_likelihood)
  if jnp.ndim(z_e) < len(batch) + 2 or jnp.shape(z_e)[:len(batch)] != batch:
    raise ValueError(f"vq_vae_loss: z_e has shape {jnp.shape(z_e)}, log_likelihood {batch}; z_e "
                     f"must be [{', '.join(map(str, batch + ('L',)))}, D]: the log-likelihood's "
                     f"batch axes, then at least one position axis, then the code size")
  positions = tuple(range(len(batch), jnp.ndim(z_e) - 1))
  codebook = jnp.sum(vq_codebook_loss(z_e, e), axis=positions)
  commitment = jnp.sum(vq_commitment_loss(z_e, e), axis=positions)
  return -log_likelihood + codebook + commitment_cost * commitment
