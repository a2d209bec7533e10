"""The device check: configs/cifar10_vdvae.py's train step and the evaluator on one GPU.

    bash benchmarks/device_check.sh [--tiny] [--json PATH]

(the script installs what is missing, then runs each phase of this module in a process of its own,
so that each phase's peak of device memory is its own, and prints the table). Phases:
  - matmul: the device's matmul peak, a 16384^2 bfloat16 and float32 product timed (float32 at
    JAX's default precision, the one the float32 step runs at);
  - train_bfloat16, train_float32: the train step as the trainer jits it (`loop.jit_steps`), batch
    32 on one device, `train.compute_dtype` bfloat16 (float32 parameters) or float32: step time,
    images/s, XLA's FLOPs per step (cost analysis), and the peak device memory
    (`memory_stats()['peak_bytes_in_use']`); the table divides the FLOP rate by the matmul peak of
    the same dtype (model FLOP utilization);
  - eval: the evaluator's log weights per second, K = eval.num_samples samples through
    `model.log_weights` at eval.batch_size in chunks of eval.chunk_size, float32 at precision
    'highest', as `jaxvae.eval` runs it.
Each phase merges its result into the JSON file (`--json`); a phase that fails records its error.
`--table` prints the table of the JSON; `--write` also puts it into BENCHMARKS.md (section
"device_check") and benchmarks/results.json. `--tiny`: the smoke variant at small sizes, to check
the script on a CPU.
"""

import argparse
import json
import pathlib
import tempfile
import time

import jax
import jax.numpy as jnp

from benchmarks import common, eval_throughput, vdvae
from jaxvae.models import build_model
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime.trained import init_variables

NAME = "device_check"
PHASES = ("matmul", "train_bfloat16", "train_float32", "eval")


def _config(tiny: bool):
  """configs/cifar10_vdvae.py; `tiny`: its smoke variant with `vdvae.TINY_BLOCKS`, batch 4."""
  config = vdvae.cifar10_config(tiny)
  if tiny:
    config.train.batch_size = config.eval.batch_size = 4
  return config


def matmul(tiny: bool) -> dict:
  """FLOP/s of a `size`^2 bfloat16 and float32 matmul, the best of repeats."""
  size = 256 if tiny else 16384
  return {"size": size, **{name: common.matmul_peak_flops(size, 3 if tiny else 10, dtype)
                           for name, dtype in (("bfloat16", jnp.bfloat16),
                                               ("float32", jnp.float32))}}


def train(tiny: bool, dtype: str) -> dict:
  """The train step at `train.compute_dtype = dtype`: ms per step (the median of repeats of
  `steps` steps, after a warm-up), images/s, XLA's FLOPs per step, compile seconds."""
  config = _config(tiny)
  config.train.compute_dtype = dtype
  mesh = mesh_lib.make_mesh(1)
  step, init, abstract_state, chunk = vdvae.trainer_step(config, vdvae.CIFAR10, mesh)
  start = time.perf_counter()
  compiled = step.lower(abstract_state, chunk).compile()
  compile_seconds = time.perf_counter() - start
  batch = config.train.batch_size
  images = {"image": jax.device_put(vdvae.random_images(batch, vdvae.CIFAR10, 0)[None],
                                    mesh_lib.stacked_batch_sharding(mesh))}
  steps = 2 if tiny else 20
  holder = {"state": init(jax.random.key(0))}

  def run():
    state = holder["state"]
    for _ in range(steps):
      state, _ = compiled(state, images)
    holder["state"] = jax.block_until_ready(state)

  timing = common.repeat_timing(run, 2 if tiny else 3)
  seconds = timing["median"] / steps
  return {"batch": batch, "steps": steps, "step_ms": 1e3 * seconds,
          "images_per_sec": batch / seconds, "flops_per_step": compiled.cost_analysis()["flops"],
          "spread": common.spread(timing), "compile_seconds": compile_seconds}


def evaluate(tiny: bool) -> dict:
  """The evaluator's estimate on one batch: log weights per second."""
  config = _config(tiny)
  model = build_model(config.model, vdvae.CIFAR10)
  params = init_variables(model, vdvae.CIFAR10, jax.random.key(0))["params"]
  batch, num_samples, chunk = (config.eval.batch_size, 4 if tiny else config.eval.num_samples,
                               config.eval.chunk_size)
  x = jnp.asarray(vdvae.random_images(batch, vdvae.CIFAR10, 0))
  ids = jnp.arange(batch)
  with jax.default_matmul_precision("highest"):
    start = time.perf_counter()
    compiled = eval_throughput.estimator(model, num_samples, chunk).lower(params, x, ids).compile()
    compile_seconds = time.perf_counter() - start
    timing = common.repeat_timing(lambda: jax.block_until_ready(compiled(params, x, ids)),
                                  2 if tiny else 3)
  return {"batch": batch, "num_samples": num_samples, "chunk_size": chunk,
          "log_weights_per_sec": batch * num_samples / timing["median"],
          "spread": common.spread(timing), "compile_seconds": compile_seconds}


def run_phase(phase: str, tiny: bool) -> dict:
  """One phase's result, with the device, the peak device memory (None where the backend keeps no
  statistics, e.g. the CPU) and the phase's seconds; or its error."""
  start = time.perf_counter()
  try:
    if phase == "matmul":
      result = matmul(tiny)
    elif phase == "eval":
      result = evaluate(tiny)
    else:
      result = train(tiny, phase.removeprefix("train_"))
  except Exception as error:  # e.g. out of memory: recorded, and the next phase still runs
    result = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
  stats = jax.devices()[0].memory_stats() or {}
  return {**result, "peak_bytes_in_use": stats.get("peak_bytes_in_use"),
          "device": f"{jax.devices()[0].device_kind} ({jax.default_backend()})",
          "seconds": round(time.perf_counter() - start, 1)}


def _cell(results: dict, phase: str, key: str, form) -> str:
  """`form(results[phase][key])`, or why there is no value."""
  if phase not in results:
    return "not run"
  if "error" in results[phase]:
    return f"failed: {results[phase]['error'][:100]}"
  value = results[phase].get(key)
  return "-" if value is None else form(value)


def table(results: dict) -> str:
  """The markdown tables of the phases in `results`."""
  dtypes = ("bfloat16", "float32")
  rows = [("step time (ms, median)", "step_ms", "{:.1f}".format),
          ("images/s", "images_per_sec", "{:,.0f}".format),
          ("TFLOP per step (XLA cost analysis)", "flops_per_step", lambda v: f"{v / 1e12:.2f}"),
          ("peak device memory (GiB)", "peak_bytes_in_use", lambda v: f"{v / 2**30:.1f}"),
          ("compile (s)", "compile_seconds", "{:.0f}".format)]
  lines = ["| train step, batch "
           f"{results.get('train_float32', results.get('train_bfloat16', {})).get('batch', '-')} "
           "| bfloat16 | float32 |", "| --- | --- | --- |"]
  for label, key, form in rows:
    lines.append(f"| {label} | " + " | ".join(_cell(results, f"train_{d}", key, form)
                                               for d in dtypes) + " |")
  size = results.get("matmul", {}).get("size", "-")
  lines.append(f"| matmul peak, {size}^2 (TFLOP/s, measured) | " + " | ".join(
      _cell(results, "matmul", d, lambda v: f"{v / 1e12:.1f}") for d in dtypes) + " |")
  utilization = []
  for d in dtypes:
    step, peak = results.get(f"train_{d}", {}), results.get("matmul", {}).get(d)
    utilization.append(f"**{100 * step['flops_per_step'] / (step['step_ms'] / 1e3) / peak:.0f}%**"
                       if "step_ms" in step and peak else "-")
  lines.append("| **model FLOP utilization** | " + " | ".join(utilization) + " |")
  evaluator = results.get("eval", {})
  shape = (f"{evaluator['batch']} x {evaluator['num_samples']} ({evaluator['chunk_size']})"
           if "batch" in evaluator else _cell(results, "eval", "batch", str))
  lines += ["", "| evaluator, float32 at precision 'highest' | value |", "| --- | --- |",
            f"| batch x K (chunk) | {shape} |",
            "| log weights/s | " + _cell(results, "eval", "log_weights_per_sec",
                                        "{:,.0f}".format) + " |",
            "| peak device memory (GiB) | " + _cell(results, "eval", "peak_bytes_in_use",
                                                   lambda v: f"{v / 2**30:.1f}") + " |"]
  return "\n".join(lines)


def markdown(results: dict) -> str:
  """The BENCHMARKS.md section of a device check's results."""
  info = results["machine"]
  return "\n".join([
      "## Device check",
      "",
      f"`bash benchmarks/device_check.sh{' --tiny' if results['tiny'] else ''}` on "
      f"{info['date']}: {info['devices']} ({info['platform']}); jax {info['jax']}. "
      "configs/cifar10_vdvae.py's train step as the trainer jits it, one device, and the "
      "evaluator's estimate, each phase in a process of its own; model FLOP utilization is XLA's "
      "FLOPs per step over the step time, against the matmul peak of the same dtype measured in "
      "the same run.",
      "",
      table(results),
  ])


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--phase", action="append", choices=PHASES,
                      help="Run this phase (repeatable); default: every phase, in this process.")
  parser.add_argument("--json", type=pathlib.Path,
                      default=pathlib.Path(tempfile.gettempdir()) / "device_check.json",
                      help="The results file each phase merges its result into.")
  parser.add_argument("--tiny", action="store_true", help="Small sizes, to check on a CPU.")
  parser.add_argument("--table", action="store_true", help="Only print the table of --json.")
  parser.add_argument("--write", action="store_true",
                      help="With --table: also write it into BENCHMARKS.md and results.json.")
  args = parser.parse_args(argv)
  common.configure_host(forced_devices=1)
  results = json.loads(args.json.read_text()) if args.json.exists() else {}
  if not args.table:
    for phase in args.phase or PHASES:
      results.update({phase: run_phase(phase, args.tiny), "machine": common.machine(),
                      "tiny": args.tiny})
      args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
      print(f"{phase}: {results[phase]}", flush=True)
  if args.table or not args.phase:
    print(table(results), flush=True)
  if args.write:
    common.write_section(NAME, markdown(results), results)


if __name__ == "__main__":
  main()
