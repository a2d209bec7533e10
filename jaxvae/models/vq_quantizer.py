"""The VQ-VAE's vector quantizer and its codebook health: EMA updates, data initialization,
dead-code restarts and usage statistics (van den Oord et al., 2017; Razavi et al., 2019;
Dhariwal et al., 2020).

The codebook statistics (and, with EMA updates, the codebook itself) are model state, not
parameters: they live in the `codebook` collection (`CODEBOOK`), which carries no optimizer state,
and in training (when that collection is mutable) `VectorQuantizer` writes their new values there.
Every statistic is a sum over the global batch inside `jit`, so with a batch sharded over devices
and hosts XLA reduces it across all of them: 8 devices give what 1 device gives.

Shapes: `z [M, D]` are the M = B * H * W encoder outputs of a batch, the codebook is `[N, D]`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvae import losses
from jaxvae.models.interface import METRICS

CODEBOOK = "codebook"  # the collection of the codebook statistics


def code_counts(codes: jax.Array, num_codes: int) -> jax.Array:
  """How often each code is chosen: `[...] int -> [N]` float32."""
  return jnp.zeros(num_codes, jnp.float32).at[codes.ravel()].add(1.0)


def perplexity(counts: jax.Array) -> jax.Array:
  """`exp(-sum_n p_n log p_n)` of the code frequencies `p = counts / sum(counts)`: `[N] -> []`;
  1 when one code is used, N when all are used equally."""
  p = counts / jnp.sum(counts)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def ema_update(ema_count: jax.Array, ema_sum: jax.Array, z: jax.Array, codes: jax.Array,
               decay: float, epsilon: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One EMA codebook update (van den Oord et al., 2017, appendix A.1), with Laplace smoothing.

      N_n <- decay N_n + (1 - decay) n_n,      n_n = #{m : codes_m = n}
      S_n <- decay S_n + (1 - decay) sum_{m : codes_m = n} z_m
      e_n  = S_n / N~_n,   N~_n = (N_n + epsilon) / (sum_k N_k + K epsilon) * sum_k N_k

  Args: `ema_count [N]`, `ema_sum [N, D]`, `z [M, D]`, `codes [M]`. Returns the new
  `(ema_count [N], ema_sum [N, D], codebook [N, D])`.
  """
  num_codes = ema_count.shape[0]
  count = decay * ema_count + (1.0 - decay) * code_counts(codes, num_codes)
  total = decay * ema_sum + (1.0 - decay) * jnp.zeros_like(ema_sum).at[codes].add(z)
  n = jnp.sum(count)
  smoothed = (count + epsilon) / (n + num_codes * epsilon) * n
  return count, total, total / smoothed[:, None]


def kmeans(z: jax.Array, centers: jax.Array, iterations: int) -> jax.Array:
  """`iterations` Lloyd steps from `centers [N, D]` on the points `z [M, D]`: `[N, D]`; a center
  that no point chooses stays where it is."""
  def step(centers, _):
    codes = losses.nearest_codes(z, centers)
    counts = code_counts(codes, centers.shape[0])
    sums = jnp.zeros_like(centers).at[codes].add(z)
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers), None
  return jax.lax.scan(step, centers, None, length=iterations)[0]


def sample_rows(key: jax.Array, z: jax.Array, num: int) -> jax.Array:
  """`num` rows of `z [M, D]` drawn uniformly, without replacement when `M >= num`: `[num, D]`."""
  return z[jax.random.choice(key, z.shape[0], (num,), replace=z.shape[0] < num)]


def restart_dead_codes(dead: jax.Array, codebook: jax.Array, z: jax.Array,
                       key: jax.Array) -> jax.Array:
  """The codebook with exactly the codes where `dead [N]` is true replaced by encoder outputs drawn
  from `z [M, D]` with `key` (Dhariwal et al., 2020, "Jukebox", random restarts): `[N, D]`."""
  return jnp.where(dead[:, None], sample_rows(key, z, codebook.shape[0]), codebook)


def _normalize(x: jax.Array) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), 1e-12))


class VectorQuantizer(nn.Module):
  """Maps encoder outputs `z_e [B, ..., D]` to their nearest codes, with a healthy codebook.

  - `codebook_update`: 'ema' (codebook = EMA of the assigned encoder outputs, `codebook_decay`,
    Laplace `codebook_epsilon`; the loss penalty is the commitment term) or 'loss' (a trained
    codebook, in `params`; the penalty adds the codebook term `|sg(z_e) - e|^2`).
  - `codebook_init` ('ema' only): 'random' (N(0, 1) codes), 'sample' (encoder outputs of the
    first training batch) or 'kmeans' (`kmeans_iterations` Lloyd steps from such a sample).
  - `dead_code_steps`: a code unused for this many training steps is dead; with
    `restart_dead_codes` ('ema' only), dead codes are re-seeded from the current batch's encoder
    outputs.
  - `cosine_codes`: codes and encoder outputs are L2-normalized (distances are cosine distances).
  - `codebook_chunk_size`: codebook chunk of the nearest-code search (`losses.nearest_codes`);
    0: all at once.
  """

  num_codes: int
  code_dim: int
  commitment_cost: float = 0.25
  codebook_update: str = "ema"
  codebook_decay: float = 0.99
  codebook_epsilon: float = 1e-5
  codebook_init: str = "kmeans"
  kmeans_iterations: int = 10
  dead_code_steps: int = 100
  restart_dead_codes: bool = True
  cosine_codes: bool = False
  codebook_chunk_size: int = 0

  def setup(self):
    shape = (self.num_codes, self.code_dim)
    if self.codebook_update == "loss":
      self.codebook = self.param("codebook", nn.initializers.normal(1.0), shape)
    else:
      self._codebook = self.variable(CODEBOOK, "codebook", lambda: nn.initializers.normal(1.0)(
          self.make_rng("params"), shape))
      self.codebook = self._codebook.value
      self.ema_count = self.variable(CODEBOOK, "ema_count", jnp.zeros, (self.num_codes,))
      self.ema_sum = self.variable(CODEBOOK, "ema_sum", jnp.zeros, shape)
      self.initialized = self.variable(CODEBOOK, "initialized", jnp.zeros, ())
    self.unused_steps = self.variable(CODEBOOK, "unused_steps", jnp.zeros, (self.num_codes,))

  def codewords(self, codes: jax.Array) -> jax.Array:
    """`codes [...] -> [..., D]`, the (normalized, for cosine codes) code vectors."""
    codebook = self.codebook if self.codebook_update == "loss" else jax.lax.stop_gradient(
        self.codebook)
    return jnp.take(_normalize(codebook) if self.cosine_codes else codebook, codes, axis=0)

  def __call__(self, z_e: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`z_e [B, ..., D]` -> `(z_q [B, ..., D], codes [B, ...], penalty [B])`.

    `z_q` is the straight-through output; `penalty` the per-example loss terms summed over
    positions (`commitment_cost * |z_e - sg(e)|^2`, plus `|sg(z_e) - e|^2` for 'loss'). In training
    (the `codebook` collection mutable) the new statistics go there and usage metrics to
    `metrics`; `key` draws the restarts and the data initialization.
    """
    z_e = jnp.asarray(z_e)
    if self.cosine_codes:
      z_e = _normalize(z_e)
    codebook = jax.lax.stop_gradient(self.codebook)
    training = self.is_mutable_collection(CODEBOOK) and not self.is_initializing()
    ema = self.codebook_update == "ema"
    z = jax.lax.stop_gradient(z_e).reshape(-1, self.code_dim)
    init_key, restart_key = jax.random.split(key)
    if training and ema and self.codebook_init != "random":
      codebook = jax.lax.cond(self.initialized.value > 0, lambda: codebook,
                              lambda: self._data_init(z, init_key))
    if self.cosine_codes:
      codebook = _normalize(codebook)
    codes = losses.nearest_codes(z, codebook, self.codebook_chunk_size or None)
    if ema:  # the (data-initialized) codebook of this step, without gradient
      codewords = jnp.take(codebook, codes, axis=0).reshape(z_e.shape)
    else:  # differentiable with respect to the codebook
      codewords = self.codewords(codes.reshape(z_e.shape[:-1]))
    penalty = self.commitment_cost * losses.vq_commitment_loss(z_e, codewords)
    if not ema:
      penalty = penalty + losses.vq_codebook_loss(z_e, codewords)
    if training:
      self._update_statistics(z, codes, codebook, restart_key)
    z_q = losses.straight_through(z_e, codewords)
    return z_q, codes.reshape(z_e.shape[:-1]), jnp.sum(penalty.reshape(z_e.shape[0], -1), axis=-1)

  def _data_init(self, z: jax.Array, key: jax.Array) -> jax.Array:
    """The first batch's codebook: a sample of its encoder outputs, refined by k-means."""
    codebook = sample_rows(key, z, self.num_codes)
    if self.codebook_init == "kmeans":
      return kmeans(z, codebook, self.kmeans_iterations)
    return codebook

  def _update_statistics(self, z, codes, codebook, key) -> None:
    counts = code_counts(codes, self.num_codes)
    unused = jnp.where(counts > 0, 0.0, self.unused_steps.value + 1.0)
    dead = unused >= self.dead_code_steps
    self.put_variable(METRICS, "perplexity", perplexity(counts))
    self.put_variable(METRICS, "codes_used", jnp.mean(counts > 0))
    self.put_variable(METRICS, "dead_codes", jnp.sum(dead))
    if self.codebook_update == "ema":
      first = self.initialized.value == 0  # the statistics start at the (initialized) codebook
      ema_count = jnp.where(first, 1.0, self.ema_count.value)
      ema_sum = jnp.where(first, codebook, self.ema_sum.value)
      ema_count, ema_sum, codebook = ema_update(ema_count, ema_sum, z, codes, self.codebook_decay,
                                                self.codebook_epsilon)
      if self.restart_dead_codes:
        codebook = restart_dead_codes(dead, codebook, z, key)
        ema_sum = jnp.where(dead[:, None], codebook, ema_sum)
        ema_count = jnp.where(dead, 1.0, ema_count)
        unused = jnp.where(dead, 0.0, unused)
      self._codebook.value = codebook
      self.ema_count.value, self.ema_sum.value = ema_count, ema_sum
      self.initialized.value = jnp.ones(())
    self.unused_steps.value = unused
