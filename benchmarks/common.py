"""What every benchmark shares: timing with repeats, the machine's description, its measured matmul
peak, and writing one section of BENCHMARKS.md plus its JSON record.

Each benchmark module has `run(quick: bool) -> (markdown, record)`; `benchmarks/run.py` runs them
all. Figures are ratios against a baseline measured in the same invocation (this machine is shared
and noisy); absolute times are reported only from a GPU.
"""

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_JSON = ROOT / "benchmarks" / "results.json"


def configure_host(forced_devices: int) -> None:
  """Call before JAX's first computation. On a host without a GPU: `forced_devices` CPU devices
  (the scaling benchmark's mesh), and the process pinned to one core with one XLA thread: the
  cores are shared with other jobs, and multi-threaded steps that spin-wait for busy cores would
  measure the contention, not the code. A GPU host is left as it is."""
  if os.path.exists("/dev/nvidiactl") or os.environ.get("JAX_PLATFORMS", "cpu") != "cpu":
    return
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  os.environ["XLA_FLAGS"] = " ".join(flags + [
      f"--xla_force_host_platform_device_count={forced_devices}",
      "--xla_cpu_multi_thread_eigen=false"])


def repeat_timing(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
  """Seconds per call of `fn` (which must block until its work is done): median, min, max."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return {"median": statistics.median(times), "min": min(times), "max": max(times),
          "repeats": repeats}


def spread(timing: dict) -> str:
  """`median (min-max)` as a +- percentage of the median."""
  half_range = (timing["max"] - timing["min"]) / 2 / timing["median"]
  return f"+-{100 * half_range:.0f}%"


def matmul_peak_flops(size: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """The machine's measured matmul rate (FLOP/s) in `dtype` (at JAX's default precision) on the
  default device: the roofline."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  matmul = jax.jit(lambda x: x @ x)
  timing = repeat_timing(lambda: matmul(a).block_until_ready(), repeats)
  return 2 * size**3 / timing["min"]


def memory_bytes(compiled) -> int:
  """A compiled function's memory per device by XLA's memory analysis: arguments + outputs +
  temporaries (donated outputs that alias their arguments counted in both)."""
  m = compiled.memory_analysis()
  return int(m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes)


def config_file(name: str, variant: str = ""):
  """`get_config(variant)` of `configs/NAME.py`."""
  spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def machine() -> dict:
  """The machine and software this run measured."""
  cpu = platform.processor() or platform.machine()
  if os.path.exists("/proc/cpuinfo"):
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  import flax
  import grain  # noqa: F401
  import optax
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "cpu": cpu, "cores": os.cpu_count(), "platform": jax.default_backend(),
      "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
      "python": platform.python_version(),
  }


def write_section(name: str, markdown: str, record: dict, markdown_path: pathlib.Path = BENCHMARKS_MD,
                  json_path: pathlib.Path = RESULTS_JSON) -> None:
  """Replaces section `name` of BENCHMARKS.md (between its markers) and its record in results.json."""
  begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
  text = markdown_path.read_text() if markdown_path.exists() else "# Benchmarks\n"
  block = f"{begin}\n{markdown.strip()}\n{end}"
  if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
  else:
    text = text.rstrip() + "\n\n" + block + "\n"
  markdown_path.write_text(text)
  results = json.loads(json_path.read_text()) if json_path.exists() else {}
  results[name] = record
  json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def main(name: str, run: Callable[[bool], tuple[str, dict]], forced_devices: int = 1) -> None:
  """The command line of one benchmark module:
  `python -m benchmarks.MODULE [--quick] [--no-write | --record PATH]`."""
  parser = argparse.ArgumentParser(description=f"Runs the '{name}' section of BENCHMARKS.md.")
  parser.add_argument("--quick", action="store_true", help="Small sizes, to check the harness.")
  parser.add_argument("--no-write", action="store_true", help="Print only; leave BENCHMARKS.md.")
  parser.add_argument("--record", type=pathlib.Path, default=None,
                      help="Write the section's markdown and record as JSON here instead of into "
                           "BENCHMARKS.md (how benchmarks.run collects each section).")
  args = parser.parse_args()
  configure_host(forced_devices)
  markdown, record = run(args.quick)
  record = {"machine": machine(), **record}
  if args.record:
    args.record.write_text(json.dumps({"markdown": markdown, "record": record}))
  elif not args.no_write:
    write_section(name, markdown, record)
  print(markdown, flush=True)
