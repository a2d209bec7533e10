"""Runs every benchmark and writes BENCHMARKS.md (tables) and benchmarks/results.json (records).

    .venv/bin/python -m benchmarks.run [--quick] [--only NAME,NAME] [--out DIR]

Each section runs in a process of its own, `python -m benchmarks.MODULE --record PATH`, which
sets up the host for it (`common.configure_host`): on a CPU host, pinned to one core, with 8 forced
devices for the scaling and vdvae sections and one device for the others (XLA:CPU runs scanned
training steps about 2x slower in a process with 8 forced devices, even on one of them). On a GPU
host the same suite records absolute times on the GPU.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

from benchmarks import common

# name -> module; each module has run(quick) -> (markdown, record).
BENCHMARKS = {
    "trainer": "benchmarks.train_throughput",
    "evaluator": "benchmarks.eval_throughput",
    "input_pipeline": "benchmarks.data_throughput",
    "scaling": "benchmarks.scaling",
    "model_quality": "benchmarks.model_quality",
    "gradient_estimators": "benchmarks.gradient_estimators",
    "vdvae": "benchmarks.vdvae",
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
  common.configure_host(forced_devices=1)
  info = common.machine()
  command = " ".join(["python -m benchmarks.run", *(["--quick"] if args.quick else []),
                      *([f"--only {args.only}"] if args.only else [])])
  where = (f"{info['devices']} ({info['platform']})" if info["platform"] == "gpu" else
           f"{info['cpu']}, each section in its own process pinned to one of its {info['cores']} "
           "cores (shared with other work)")
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
    with tempfile.TemporaryDirectory() as tmp:
      path = pathlib.Path(tmp) / "section.json"
      done = subprocess.run([sys.executable, "-m", BENCHMARKS[name], "--record", str(path),
                             *(["--quick"] if args.quick else [])], cwd=common.ROOT)
      if done.returncode:
        sys.exit(f"benchmark section '{name}' failed (exit status {done.returncode}); the "
                 f"sections before it were written")
      section = json.loads(path.read_text())
    common.write_section(name, section["markdown"], section["record"], **paths)


if __name__ == "__main__":
  main()
