"""Quantizer throughput: codes assigned per second at a large codebook (8192 codes x 256 dims) on a
batch of 32x32 latent grids, `jaxvae.losses.nearest_codes` (`|e|^2 - 2 z.e` by matmul, whole or in
codebook chunks) against the naive search that materializes every difference `z_m - e_n`.

    .venv/bin/python -m benchmarks.vq_throughput [--quick]

The naive search holds `[rows, N, D]` floats (8.6 GB for one 32x32 grid), so it runs over blocks of
16 rows (`lax.map`) on the first rows of the batch; codes per second are comparable all the same.
Writes the section "vq_throughput" of BENCHMARKS.md and its record in benchmarks/results.json.
"""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common

NAIVE_BLOCK = 16


def naive_nearest_codes(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """`argmin_n sum_d (z_md - e_nd)^2` from the full difference tensor, `NAIVE_BLOCK` rows at a
  time."""
  def block(rows):  # [NAIVE_BLOCK, D] -> [NAIVE_BLOCK]
    return jnp.argmin(jnp.sum(jnp.square(rows[:, None, :] - codebook[None]), -1), -1)
  return jax.lax.map(block, z.reshape(-1, NAIVE_BLOCK, z.shape[-1])).reshape(-1)


def run(quick: bool) -> tuple[str, dict]:
  from jaxvae import losses

  num_codes, dim, grids, side = (512, 64, 1, 16) if quick else (8192, 256, 4, 32)
  naive_rows, repeats = (64, 3) if quick else (256, 5)
  key_z, key_e = jax.random.split(jax.random.key(0))
  z = jax.random.normal(key_z, (grids * side * side, dim), jnp.float32)
  codebook = jax.random.normal(key_e, (num_codes, dim), jnp.float32)
  methods = {
      "naive [rows, N, D] differences": (naive_nearest_codes, naive_rows),
      "matmul, whole codebook ([rows, N])": (losses.nearest_codes, z.shape[0]),
      "matmul, 1024-code chunks ([rows, 1024])": (
          lambda z, e: losses.nearest_codes(z, e, min(1024, num_codes)), z.shape[0]),
  }
  reference = np.asarray(losses.nearest_codes(z[:naive_rows], codebook))
  record = {"num_codes": num_codes, "code_dim": dim, "grids": f"{grids} x {side}x{side}",
            "methods": {}}
  for name, (fn, rows) in methods.items():
    fn = jax.jit(fn)
    np.testing.assert_array_equal(fn(z[:naive_rows], codebook), reference)  # the same codes
    timing = common.repeat_timing(lambda: fn(z[:rows], codebook).block_until_ready(), repeats)
    record["methods"][name] = {"rows": rows, "codes_per_sec": rows / timing["median"],
                               "timing": timing}
  base = record["methods"]["naive [rows, N, D] differences"]["codes_per_sec"]
  lines = [
      "## Vector quantizer throughput",
      "",
      f"Nearest-code search for {num_codes} codes x {dim} dims on {grids} latent grids of "
      f"{side}x{side} ({z.shape[0]} vectors); the naive search runs on the first {naive_rows} "
      f"(its `[rows, N, D]` difference tensor, {NAIVE_BLOCK} rows at a time). All three return the "
      f"same codes. `python -m benchmarks.vq_throughput`.",
      "",
      "| search | rows timed | codes / s | vs naive |",
      "| --- | --- | --- | --- |",
  ]
  for name, entry in record["methods"].items():
    lines.append(f"| {name} | {entry['rows']} | {entry['codes_per_sec']:,.0f} "
                 f"({common.spread(entry['timing'])}) | {entry['codes_per_sec'] / base:.1f}x |")
  return "\n".join(lines), record


if __name__ == "__main__":
  common.main("vq_throughput", run)
