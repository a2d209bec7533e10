"""The evaluator's speed and memory: log weights per second at K = 5000 as a fraction of the
machine's matmul peak, and compiled memory as K grows (flat, thanks to the chunked logsumexp).

    .venv/bin/python -m benchmarks.eval_throughput [--quick]

The model is the MNIST MLP VAE (784-200-200-50, Bernoulli likelihood); the estimator is the one the
evaluator runs (`losses.chunked_iwae_bound` over `model.log_weights`, float32, matmuls at
`precision='highest'`). The peak is a large float32 `jnp.dot` timed in the same run; the useful
FLOPs of a log weight are those of XLA's cost analysis of the compiled estimator. Memory is XLA's
compiled memory analysis (temporaries + outputs + arguments) of the estimator at each K, beside an
unchunked baseline (chunk = K) that holds every log weight and activation at once.
"""

import math

import jax
import jax.numpy as jnp

from benchmarks import common
from jaxvae import losses
from jaxvae.config import get_config
from jaxvae.models import build_model
from jaxvae.runtime.trained import init_variables

NAME = "evaluator"
IMAGE_SHAPE = (28, 28, 1)


def estimator(model, num_samples: int, chunk_size: int):
  """The evaluator's estimate, jitted: `(params, x [B, ...], ids [B]) -> (log p(x) [B], ELBO [B])`
  with K = `num_samples` drawn `chunk_size` at a time (`losses.chunked_iwae_bound`)."""
  def estimate(params, x, ids):
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), ids)
    fn = lambda k: model.apply({"params": params}, x, k, method=model.log_weights).values  # noqa
    return losses.chunked_iwae_bound(fn, keys, num_samples, chunk_size)
  return jax.jit(estimate)


def run(quick: bool = False) -> tuple[str, dict]:
  config = get_config()
  config.model.latent_dim = 50
  config.model.hidden_sizes = (200, 200)
  model = build_model(config.model, IMAGE_SHAPE)
  params = init_variables(model, IMAGE_SHAPE, jax.random.key(0))["params"]  # a VAE: no state
  batch, num_samples, chunk = (20, 500, 100) if quick else (100, 5000, 500)
  x = (jax.random.uniform(jax.random.key(1), (batch,) + IMAGE_SHAPE) < 0.3).astype(jnp.float32)
  ids = jnp.arange(batch)
  with jax.default_matmul_precision("highest"):
    peak = common.matmul_peak_flops(1024 if quick else 2048)
    estimate = estimator(model, num_samples, chunk)
    compiled = estimate.lower(params, x, ids).compile()
    # XLA counts a loop body once, so count the FLOPs of one chunk's log weights, unlooped.
    one_chunk = jax.jit(lambda p, v, k: model.apply({"params": p}, v, k,
                                                    method=model.log_weights).values)
    keys = jax.random.split(jax.random.key(2), (chunk, batch))
    flops = one_chunk.lower(params, x, keys).compile().cost_analysis()
    flops = (flops[0] if isinstance(flops, list) else flops)["flops"] * num_samples / chunk
    timing = common.repeat_timing(
        lambda: jax.block_until_ready(compiled(params, x, ids)), repeats=2 if quick else 3)
    memory = []
    for k in ((100, 200, 500) if quick else (100, 500, 1000, 2000, 5000)):
      chunked = estimator(model, k, min(chunk, k)).lower(params, x, ids).compile()
      whole = estimator(model, k, k).lower(params, x, ids).compile()
      memory.append((k, common.memory_bytes(chunked), common.memory_bytes(whole)))
  log_weights = batch * num_samples
  rate = log_weights / timing["min"]
  flops_per_log_weight = flops / log_weights
  analytic = 2 * (50 * 200 + 200 * 200 + 200 * math.prod(IMAGE_SHAPE))  # decoder matmuls
  fraction = rate * flops_per_log_weight / peak
  info = common.machine()
  lines = [
      "## Evaluator",
      "",
      "Importance-sampled log p(x) of the MNIST MLP VAE (784-200-200-50, Bernoulli), float32 at "
      "`precision='highest'`, with the evaluator's estimator (`losses.chunked_iwae_bound` over "
      "`model.log_weights`). Measured with",
      "",
      "```bash",
      ".venv/bin/python -m benchmarks.eval_throughput" + (" --quick" if quick else ""),
      "```",
      "",
      f"on {info['devices']} ({info['cpu']}, {info['cores']} cores shared with other work; "
      f"jax {info['jax']}; {info['date']}). The peak is a {1024 if quick else 2048}^2 float32 "
      f"`jnp.dot` timed in the same run; absolute rates on a shared CPU are indicative only, the "
      f"fraction of peak is the figure to compare.",
      "",
      "| quantity | value |",
      "| --- | --- |",
      f"| batch x K (chunk) | {batch} x {num_samples} ({chunk}) |",
      f"| log weights per second | {rate:.3g} ({common.spread(timing)} over "
      f"{timing['repeats']} runs) |",
      f"| FLOPs per log weight (XLA cost analysis; decoder matmuls alone: {analytic:,}) | "
      f"{flops_per_log_weight:,.0f} |",
      f"| achieved FLOP/s | {rate * flops_per_log_weight:.3g} |",
      f"| measured float32 matmul peak FLOP/s | {peak:.3g} |",
      f"| **fraction of matmul peak** | **{fraction:.2f}** |",
      "",
      f"Compiled memory (arguments + outputs + temporaries, XLA memory analysis) as K grows, batch "
      f"{batch}: chunked (chunk {chunk}) against holding all K at once:",
      "",
      "| K | chunked (MiB) | all K at once (MiB) | ratio |",
      "| --- | --- | --- | --- |",
  ]
  for k, chunked, whole in memory:
    lines.append(f"| {k} | {chunked / 2**20:.1f} | {whole / 2**20:.1f} | {whole / chunked:.1f}x |")
  lines += ["", "Once K reaches the chunk size, the chunked estimator's memory is flat in K (that "
            "of one chunk); the unchunked one grows linearly."]
  record = {"machine": info, "batch": batch, "num_samples": num_samples, "chunk_size": chunk,
            "log_weights_per_second": rate, "flops_per_log_weight": flops_per_log_weight,
            "peak_flops": peak, "fraction_of_peak": fraction, "timing": timing,
            "memory_bytes": {str(k): {"chunked": c, "all_at_once": w} for k, c, w in memory}}
  return "\n".join(lines), record


if __name__ == "__main__":
  common.main(NAME, run)
