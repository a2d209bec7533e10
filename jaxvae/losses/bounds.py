"""Per-example bounds on log p(x): the ELBO in both forms, the IWAE bound (also chunked over K), and
bits per dimension.

A model's `log_weights(x, keys)` returns `log w[k, b] = log p(x_b, z_kb) - log q(z_kb | x_b)` with
`z_kb ~ q(z | x_b)`, shape `[K, B]`. Every bound here returns one value per example, `[B]`, with no
reduction over the batch.
"""

import functools
import math
import operator
from collections.abc import Callable, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np


def elbo(log_weights: jax.Array) -> jax.Array:
  """Monte Carlo ELBO `mean_k log w[k, b]` = `E_q[log p(x, z) - log q(z | x)]`: `[K, B] -> [B]`."""
  chex.assert_rank(log_weights, 2)
  return jnp.mean(log_weights, axis=0)


def elbo_kl_form(
    log_likelihood: jax.Array, kl: jax.Array, beta: jax.Array | float = 1.0
) -> jax.Array:
  """The ELBO as reconstruction minus KL, `E_q[log p(x | z)] - beta * KL(q(z | x) || p(z))`: `[B]`.

  Args:
    log_likelihood: `[K, B]` values `log p(x_b | z_kb)`, `z_kb ~ q(z | x_b)` (the expectation is
      their mean over K).
    kl: `[B]`, analytic where a closed form exists (e.g. `kl_diag_gaussian_standard_normal`), or a
      Monte Carlo estimate `mean_k [log q(z_kb | x_b) - log p(z_kb)]`; it may already be reduced by
      `free_bits_kl`.
    beta: the KL weight: 1 for the ELBO (Kingma & Welling, 2014), > 1 for a beta-VAE (Higgins et
      al., 2017), or a warm-up value from `kl_warmup_beta` (may be a traced scalar).

  With `beta = 1` and a Monte Carlo KL this equals `elbo(log_weights)` on the same samples. Neither
  form has uniformly lower variance: the analytic KL removes the KL's sampling noise, while the
  Monte Carlo form has zero variance when q is the exact posterior (Roeder et al., 2017).

  Example:
    >>> elbo_kl_form(bernoulli_log_prob(x, logits), kl_diag_gaussian_standard_normal(mean, log_var))
  """
  chex.assert_rank(log_likelihood, 2)
  chex.assert_shape(kl, log_likelihood.shape[1:])
  return jnp.mean(log_likelihood, axis=0) - beta * kl


def iwae_bound(log_weights: jax.Array) -> jax.Array:
  """IWAE bound `logsumexp_k log w[k, b] - log K` (Burda et al., 2016): `[K, B] -> [B]`.

  With K = 1 it is the ELBO; it increases with K on average and tends to log p(x).
  """
  chex.assert_rank(log_weights, 2)
  return jax.nn.logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])


def sample_keys(example_keys: jax.Array, sample_ids: jax.Array) -> jax.Array:
  """Keys `[C, B]` for samples `sample_ids [C]` of each example: `fold_in(example_keys[b], k)`.

  Sample k of example b gets the same key whatever the batch size, chunk size or device count.
  """
  chex.assert_rank([example_keys, sample_ids], 1)
  return jax.vmap(lambda k: jax.vmap(lambda key: jax.random.fold_in(key, k))(example_keys))(
      sample_ids)


def chunked_iwae_bound(
    log_weights_fn: Callable[[jax.Array], jax.Array],
    example_keys: jax.Array,
    num_samples: int | Sequence[int],
    chunk_size: int,
) -> tuple[jax.Array, jax.Array]:
  """The IWAE bound and the ELBO with K samples drawn `chunk_size` at a time: `(iwae [B], elbo [B])`.

  A `lax.scan` over chunks keeps a running logsumexp `lse <- logaddexp(lse, logsumexp(chunk))` and a
  running sum, so memory is that of one chunk and K = 5000 fits; each chunk is rematerialized under
  `jax.grad` (`jax.checkpoint`). K need not be a multiple of `chunk_size`: the remainder is one
  smaller, final chunk (no wasted samples). The result is exactly
  `iwae_bound(log_weights_fn(sample_keys(example_keys, arange(K))))` up to float rounding, and does
  not depend on `chunk_size`.

  Several K from one pass: with `num_samples` a sequence `K_1 < ... < K_J`, the bounds at every
  `K_j` are computed from the same `K_J` samples, the first `K_j` of them (nested subsets: sample k
  of an example is the same draw for every K), and both results are `[J, B]`. This costs one pass
  at `K_J` plus a masked logsumexp per `K_j`.

  Args:
    log_weights_fn: `keys [C, B] -> [C, B]` log importance weights, sample c of example b drawn with
      `keys[c, b]`; e.g. `lambda keys: model_log_weights(params, x, keys)`.
    example_keys: `[B]` one `jax.random.key` per example (e.g. `fold_in(seed, example_id)`).
    num_samples: K, an integer (Python or NumPy); or strictly increasing integers
      `(K_1, ..., K_J)`.
    chunk_size: samples per chunk, a positive integer.

  Returns:
    `(logsumexp_k log w_k - log K, mean_k log w_k)`, each `[B]` (`[J, B]` for a sequence of K).

  Example:
    >>> log_px, elbo_ = chunked_iwae_bound(lambda keys: log_w(params, x, keys), keys, 5000, 500)
    >>> log_px, elbo_ = chunked_iwae_bound(fn, keys, (1, 10, 100, 1000, 5000), 500)  # [5, B] each
  """
  nested = np.ndim(num_samples) > 0
  ks = tuple(_integer(k, "num_samples") for k in (num_samples if nested else [num_samples]))
  if not ks or ks[0] <= 0 or any(a >= b for a, b in zip(ks, ks[1:])):
    raise ValueError(f"num_samples must be positive and strictly increasing, got {num_samples}")
  chunk_size = _integer(chunk_size, "chunk_size")
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
  chex.assert_rank(example_keys, 1)
  total_samples = ks[-1]
  chunk_size = min(chunk_size, total_samples)
  num_full, remainder = divmod(total_samples, chunk_size)
  limits = jnp.asarray(ks)[:, None]  # [J, 1]

  @functools.partial(jax.checkpoint, static_argnums=(1,))
  def chunk_stats(first: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    sample_ids = first + jnp.arange(size)
    log_w = log_weights_fn(sample_keys(example_keys, sample_ids))  # [C, B]
    chex.assert_shape(log_w, (size, example_keys.shape[0]))
    inside = (sample_ids[None, :] < limits)[:, :, None]  # [J, C, 1]: sample c counts toward K_j
    lse = jax.nn.logsumexp(jnp.where(inside, log_w[None], -jnp.inf), axis=1)  # [J, B]
    return lse, jnp.sum(jnp.where(inside, log_w[None], 0.0), axis=1)

  def add_chunk(carry, first):
    lse, total = carry
    chunk_lse, chunk_sum = chunk_stats(first, chunk_size)
    return (jnp.logaddexp(lse, chunk_lse), total + chunk_sum), None

  # Every full chunk inside the one scan (none outside it), so XLA holds one chunk at a time.
  empty = jnp.full((len(ks), example_keys.shape[0]), -jnp.inf)
  starts = chunk_size * jnp.arange(num_full)
  (lse, total), _ = jax.lax.scan(add_chunk, (empty, jnp.zeros_like(empty)), starts)
  if remainder:
    chunk_lse, chunk_sum = chunk_stats(jnp.asarray(num_full * chunk_size), remainder)
    lse, total = jnp.logaddexp(lse, chunk_lse), total + chunk_sum
  counts = np.asarray(ks, np.float64)[:, None]
  iwae, mean = lse - np.log(counts).astype(np.float32), total / counts.astype(np.float32)
  return (iwae, mean) if nested else (iwae[0], mean[0])


def _integer(value, name: str) -> int:
  """`value` as an int if it is an integer of any type (Python, NumPy, a 0-d array), else a
  `ValueError` naming `name`."""
  try:
    return operator.index(value)
  except TypeError:
    raise ValueError(f"{name} must be an integer, got {value!r}") from None


def bits_per_dim(log_px: jax.Array, num_dims: int, *, bin_width: float = 1.0) -> jax.Array:
  """Nats per example `[B]` to bits per dimension `[B]`: `-(log p(x) + D log(bin_width)) / (D log 2)`.

  - Discrete likelihoods (Bernoulli, categorical-256, discretized logistic): `log_px` is a log
    probability mass; keep `bin_width = 1`.
  - Continuous densities on dequantized 8-bit data: with `x = (k + u) / 256`, `u ~ U[0, 1)^D`, pass
    `bin_width = 1 / 256` (`2 / 256` for data in `[-1, 1]`, `1` for `x = k + u`). This converts the
    density into the mass of the pixel's bin, `log P(k) >= E_u log p(x) + D log(bin_width)`
    (Theis et al., 2016), so the usual `bpd = (-log p(x) + D log 256) / (D log 2)` of image flows.
  """
  return -(log_px + num_dims * math.log(bin_width)) / (num_dims * math.log(2.0))
