"""Runs every benchmark and writes BENCHMARKS.md (tables) and benchmarks/results.json (records).

    .venv/bin/python -m benchmarks.run [--quick] [--only NAME,NAME]

On a CPU host, JAX is given 8 forced devices so that the scaling benchmark runs the sharded path;
the other benchmarks use one device. On a GPU host the same suite records absolute times.
"""

import argparse
import importlib
import os
import sys

# name -> module; each module has run(quick) -> (markdown, record).
BENCHMARKS = {
    "trainer": "benchmarks.train_throughput",
    "evaluator": "benchmarks.eval_throughput",
    "input_pipeline": "benchmarks.data_throughput",
    "scaling": "benchmarks.scaling",
    "model_quality": "benchmarks.model_quality",
}


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--quick", action="store_true", help="Small sizes, to check the harness.")
  parser.add_argument("--only", default="", help="Comma-separated benchmark names.")
  args = parser.parse_args()
  if "jax" not in sys.modules:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
  from benchmarks import common

  names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
  unknown = sorted(set(names) - set(BENCHMARKS))
  if unknown:
    parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
  info = common.machine()
  command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
  header = "\n".join([
      "## How these were measured",
      "",
      f"`{command}` on {info['date']}: {info['cpu']} ({info['cores']} cores), "
      f"{info['devices']} ({info['platform']}), Python {info['python']}, jax {info['jax']}, "
      f"flax {info['flax']}, optax {info['optax']}.",
      "",
      "Every figure is a ratio against a baseline measured in the same invocation on the same data; "
      "the machine is shared and noisy, so absolute times are reported only from a GPU.",
  ])
  common.write_section("header", header, {"machine": info, "command": command})
  for name in names:
    markdown, record = importlib.import_module(BENCHMARKS[name]).run(args.quick)
    common.write_section(name, markdown, record)
    print(markdown, flush=True)


if __name__ == "__main__":
  main()
