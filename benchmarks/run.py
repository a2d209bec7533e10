"""Runs every benchmark and writes BENCHMARKS.md (tables) and benchmarks/results.json (records).

    .venv/bin/python -m benchmarks.run [--quick] [--only NAME,NAME] [--out DIR]

On a CPU host, JAX is given 8 forced devices so that the scaling benchmark runs the sharded path,
and the process is pinned to one core (`common.configure_host`); the other benchmarks use one
device. On a GPU host the same suite records absolute times on the GPU.
"""

import argparse
import importlib
import pathlib

from benchmarks import common

# name -> module; each module has run(quick) -> (markdown, record).
BENCHMARKS = {
    "trainer": "benchmarks.train_throughput",
    "evaluator": "benchmarks.eval_throughput",
    "input_pipeline": "benchmarks.data_throughput",
    "scaling": "benchmarks.scaling",
    "model_quality": "benchmarks.model_quality",
    "vq_quality": "benchmarks.vq_quality",
    "vq_throughput": "benchmarks.vq_throughput",
}


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--quick", action="store_true", help="Small sizes, to check the harness.")
  parser.add_argument("--only", default="", help="Comma-separated benchmark names.")
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help="Write BENCHMARKS.md and results.json here instead of the repository.")
  args = parser.parse_args(argv)
  names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
  unknown = sorted(set(names) - set(BENCHMARKS))
  if unknown:
    parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
  paths = {}
  if args.out:
    args.out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown_path": args.out / "BENCHMARKS.md", "json_path": args.out / "results.json"}
  common.configure_host(forced_devices=8)
  info = common.machine()
  command = " ".join(["python -m benchmarks.run", *(["--quick"] if args.quick else []),
                      *([f"--only {args.only}"] if args.only else [])])
  where = (f"{info['devices']} ({info['platform']})" if info["platform"] == "gpu" else
           f"{info['cpu']}, pinned to one of its {info['cores']} cores (shared with other work)")
  header = "\n".join([
      "## How these were measured",
      "",
      f"Every table below comes from one invocation, `{command}`, started on {info['date']}: "
      f"{where}; Python {info['python']}, jax {info['jax']}, flax {info['flax']}, "
      f"optax {info['optax']}. The same command rewrites this file and `benchmarks/results.json`.",
      "",
      "Every speed figure is a ratio against a baseline measured in the same invocation on the same "
      "data, with the median and spread over repeats; the machine is shared and noisy, so absolute "
      "times count only from a GPU.",
  ])
  if not args.only:  # The header describes a full run; a partial one leaves it as it was.
    common.write_section("header", header, {"machine": info, "command": command}, **paths)
  for name in names:
    markdown, record = importlib.import_module(BENCHMARKS[name]).run(args.quick)
    common.write_section(name, markdown, record, **paths)
    print(markdown, flush=True)


if __name__ == "__main__":
  main()
