"""The vector quantizer against NumPy: nearest codes (chunked, cosine), one EMA update, k-means,
perplexity, dead-code restarts, data initialization, and 1 device vs 8 devices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import losses
from jaxvae.models import vq_quantizer as vq
from jaxvae.runtime import mesh as mesh_lib

_rng = np.random.default_rng(0)
N, D = 16, 3


def _brute_force(z, codebook):
  """argmin_n |z - e_n|^2 in float64 over the full `[M, N, D]` difference."""
  return np.argmin(np.sum((np.float64(z)[:, None, :] - np.float64(codebook)) ** 2, -1), -1)


@pytest.mark.parametrize("chunk_size", [None, 4, 8, 16])
def test_nearest_codes_equal_brute_force_argmin(chunk_size):
  z = _rng.normal(size=(200, D)).astype(np.float32)
  codebook = _rng.normal(size=(N, D)).astype(np.float32)
  codes = jax.jit(lambda z, e: losses.nearest_codes(z, e, chunk_size))(z, codebook)
  np.testing.assert_array_equal(codes, _brute_force(z, codebook))


def test_chunked_search_breaks_ties_towards_the_lowest_code():
  codebook = np.tile(_rng.normal(size=(1, D)).astype(np.float32), (N, 1))  # all codes equal
  z = _rng.normal(size=(5, D)).astype(np.float32)
  np.testing.assert_array_equal(losses.nearest_codes(z, codebook, 4), 0)


def test_cosine_codes_are_the_most_similar_direction():
  z = _rng.normal(size=(1, 50, D)).astype(np.float32)
  codebook = _rng.normal(size=(N, D)).astype(np.float32)
  module = vq.VectorQuantizer(N, D, cosine_codes=True, codebook_init="random")
  state = module.init(jax.random.key(0), z, jax.random.key(1))[vq.CODEBOOK]
  state["codebook"] = codebook
  _, codes, _ = jax.jit(module.apply)({vq.CODEBOOK: state}, z, jax.random.key(1))
  cosine = (z[0] @ codebook.T) / np.linalg.norm(codebook, axis=-1)
  np.testing.assert_array_equal(codes[0], np.argmax(cosine, -1))


def test_one_ema_update_matches_a_hand_calculation():
  decay, epsilon = 0.9, 0.1
  count = _rng.uniform(0.5, 2.0, size=N)
  total = _rng.normal(size=(N, D))
  z = _rng.normal(size=(40, D))
  codes = _rng.integers(0, N // 2, size=40)  # half the codes unused
  new_count, new_total, codebook = jax.jit(
      lambda *a: vq.ema_update(*a, decay, epsilon))(*(np.float32(a) for a in (count, total, z)),
                                                     codes)
  want_count, want_total = count.copy(), total.copy()
  for n in range(N):
    chosen = codes == n
    want_count[n] = decay * count[n] + (1 - decay) * chosen.sum()
    want_total[n] = decay * total[n] + (1 - decay) * z[chosen].sum(0)
  n_sum = want_count.sum()
  smoothed = (want_count + epsilon) / (n_sum + N * epsilon) * n_sum
  np.testing.assert_allclose(new_count, want_count, rtol=1e-5)
  np.testing.assert_allclose(new_total, want_total, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(codebook, want_total / smoothed[:, None], rtol=1e-5, atol=1e-6)


def test_kmeans_matches_numpy_lloyd_steps():
  z = _rng.normal(size=(100, D)).astype(np.float32)
  centers = z[:N].copy()
  got = jax.jit(lambda z, c: vq.kmeans(z, c, 3))(z, centers)
  want = np.float64(centers)
  for _ in range(3):
    assign = _brute_force(z, want)
    want = np.stack([z[assign == n].mean(0) if (assign == n).any() else want[n]
                     for n in range(N)])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_perplexity_matches_numpy():
  counts = np.array([3.0, 0.0, 1.0, 4.0])
  p = counts[counts > 0] / counts.sum()
  np.testing.assert_allclose(vq.perplexity(jnp.float32(counts)), np.exp(-np.sum(p * np.log(p))),
                             rtol=1e-6)
  np.testing.assert_allclose(vq.perplexity(jnp.float32([0.0, 5.0])), 1.0)


@functools.partial(jax.jit, static_argnums=0)
def _trained_step(module, state, z, key):
  """One training call (the `codebook` collection mutable) on the codebook state `state`:
  `(codes, new codebook state, metrics)`."""
  (_, codes, _), written = module.apply({vq.CODEBOOK: state}, z, key,
                                        mutable=[vq.CODEBOOK, "metrics"])
  return codes, written[vq.CODEBOOK], written["metrics"]


def _init(module, z):
  """The codebook state at init: the EMA codebook and its statistics, no parameters."""
  variables = module.init(jax.random.key(0), z, jax.random.key(1))
  assert "params" not in variables  # with EMA updates nothing is trained by gradient
  return dict(variables[vq.CODEBOOK])


def _state(module, z):
  params = _init(module, z)
  params = dict(params, codebook=_rng.normal(size=(N, D)).astype(np.float32),
                ema_count=np.ones(N, np.float32), initialized=np.float32(1.0))
  params["ema_sum"] = params["codebook"].copy()
  return params


def test_restart_reseeds_exactly_the_dead_codes_from_encoder_outputs():
  module = vq.VectorQuantizer(N, D, dead_code_steps=5, restart_dead_codes=True)
  z = _rng.normal(size=(2, 30, D)).astype(np.float32)
  params = _state(module, z)
  params["codebook"][8:] += 100.0  # never chosen
  params["ema_sum"] = params["codebook"].copy()
  params["unused_steps"] = np.float32([0] * 8 + [4] * 4 + [1] * 4)  # 8..11 reach 5 now
  codes, updates, metrics = _trained_step(module, params, z, jax.random.key(3))
  assert np.all(np.asarray(codes) < 8)
  dead = np.arange(N) >= 8
  dead[12:] = False
  no_restart = vq.VectorQuantizer(N, D, dead_code_steps=5, restart_dead_codes=False)
  _, plain, _ = _trained_step(no_restart, params, z, jax.random.key(3))
  codebook = np.asarray(updates["codebook"])
  # The same formula in two programs that XLA fuses differently: equal to the last float32 bit.
  np.testing.assert_allclose(codebook[~dead], plain["codebook"][~dead], rtol=1e-6, atol=1e-7)
  rows = z.reshape(-1, D)
  for n in np.flatnonzero(dead):  # each re-seeded code is one of the batch's encoder outputs
    assert np.any(np.all(rows == codebook[n], axis=-1)), n
  np.testing.assert_array_equal(updates["unused_steps"], np.where(dead, 0, plain["unused_steps"]))
  np.testing.assert_array_equal(updates["ema_count"][dead], 1.0)
  np.testing.assert_array_equal(updates["ema_sum"][dead], codebook[dead])
  assert int(metrics["dead_codes"]) == 4
  used = np.isin(np.arange(N), np.asarray(codes))  # a live code the batch happened not to pick ages
  np.testing.assert_array_equal(plain["unused_steps"],
                                np.where(used, 0, params["unused_steps"] + 1))
  again = _trained_step(module, params, z, jax.random.key(3))[1]["codebook"]
  np.testing.assert_array_equal(again, codebook)  # deterministic given the key
  other = _trained_step(module, params, z, jax.random.key(4))[1]["codebook"]
  assert not np.array_equal(other[dead], codebook[dead])


def test_first_training_batch_initializes_the_codebook():
  z = _rng.normal(size=(2, 40, D)).astype(np.float32)
  rows = z.reshape(-1, D)
  for init in ("sample", "kmeans"):
    module = vq.VectorQuantizer(N, D, codebook_init=init, restart_dead_codes=False,
                                codebook_decay=0.5, codebook_epsilon=1e-9)
    params = _init(module, z)
    key = jax.random.key(5)
    codes, updates, _ = _trained_step(module, params, z, key)
    start = vq.sample_rows(jax.random.split(key)[0], jnp.asarray(rows), N)
    if init == "kmeans":
      start = vq.kmeans(jnp.asarray(rows), start, module.kmeans_iterations)
    np.testing.assert_array_equal(np.asarray(codes).ravel(), _brute_force(rows, start))
    counts = np.bincount(np.asarray(codes).ravel(), minlength=N)
    assert updates["initialized"] == 1.0
    # The EMA starts at the initial codebook with count 1.
    np.testing.assert_allclose(updates["ema_count"], 0.5 + 0.5 * counts, rtol=1e-6)
    _, again, _ = _trained_step(module, dict(params, **updates), z, key)
    assert again["initialized"] == 1.0  # initialized once


def test_statistics_on_8_devices_equal_those_on_1_device():
  assert jax.device_count() == 8
  module = vq.VectorQuantizer(N, D, dead_code_steps=2, restart_dead_codes=True,
                              codebook_init="kmeans")
  z = _rng.normal(size=(16, 12, D)).astype(np.float32)
  params = _init(module, z)
  step = functools.partial(_trained_step, module)
  sharded = jax.device_put(z, mesh_lib.batch_sharding(mesh_lib.make_mesh()))  # the trainer's
  one = jax.device_put(z, jax.devices()[0])
  results = {}
  for name, batch in (("8", sharded), ("1", one)):
    p, out = params, []
    for i in range(3):  # init, then EMA updates and restarts
      codes, updates, metrics = step(p, batch, jax.random.key(i))
      p = dict(p, **updates)
      out.append((codes, updates, metrics))
    results[name] = jax.device_get(out)
  assert len(sharded.sharding.device_set) == 8
  for (c8, u8, m8), (c1, u1, m1) in zip(results["8"], results["1"]):
    np.testing.assert_array_equal(c8, c1)
    np.testing.assert_array_equal(u8["ema_count"], u1["ema_count"])
    np.testing.assert_array_equal(u8["unused_steps"], u1["unused_steps"])
    for name in ("codebook", "ema_sum"):
      np.testing.assert_allclose(u8[name], u1[name], rtol=1e-6, atol=1e-6)
    jax.tree.map(np.testing.assert_allclose, m8, m1)
