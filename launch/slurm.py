"""SLURM GPU clusters: an sbatch script for `jaxvae train` on N nodes x G GPUs, submitted.

    python launch/slurm.py --nodes=2 --gpus_per_node=8 --workdir=/shared/runs/vae \
        --config=configs/digits_vae.py [--per=gpu|node] [--partition=P] [--time=24:00:00] \
        [--setup='source ~/venv/bin/activate'] [-- --config.KEY=VALUE ...]

One process per GPU (`--per=gpu`, the default: srun --ntasks-per-node=G, each task sees only GPU
$SLURM_LOCALID through CUDA_VISIBLE_DEVICES) or one per node (`--per=node`: each process drives
the node's G GPUs). Every task gets `--coordinator_address` (the first host of
$SLURM_JOB_NODELIST, through `scontrol show hostnames`, and a port derived from $SLURM_JOB_ID),
`--num_processes=$SLURM_NTASKS` and `--process_id=$SLURM_PROCID` for `jax.distributed.initialize`.
The job asks for SIGTERM 120 s before its time limit, on which the trainer saves a checkpoint;
submitting the same script again resumes from the workdir.

`--dry-run` prints the script and the sbatch command and writes and runs nothing.
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import common  # noqa: E402
from launch.common import LaunchError  # noqa: E402

# Run by every task (through `bash -c`): the process's own flags come from srun's variables.
_TASK = ('{visible}exec {command} --coordinator_address="$JAXVAE_COORDINATOR" '
         '--num_processes="$SLURM_NTASKS" --process_id="$SLURM_PROCID"')


def sbatch_script(nodes: int, gpus_per_node: int, per: str, train_args: list[str], *,
                  job_name: str = "jaxvae", partition: str | None = None,
                  time_limit: str | None = None, setup: str | None = None,
                  python: str = "python3") -> str:
  """The sbatch script of a `jaxvae train` job (`train_args`: its flags, e.g. --workdir)."""
  if nodes < 1 or gpus_per_node < 1:
    raise LaunchError(f"--nodes={nodes} and --gpus_per_node={gpus_per_node} must be >= 1")
  tasks_per_node = gpus_per_node if per == "gpu" else 1
  options = {"job-name": job_name, "nodes": nodes, "ntasks-per-node": tasks_per_node,
             "gpus-per-node": gpus_per_node, "output": f"{job_name}-%j.log", "signal": "TERM@120",
             "partition": partition, "time": time_limit}
  command = shlex.join([python, "-m", "jaxvae.cli", "train", *train_args])
  task = _TASK.format(command=command,
                      visible='export CUDA_VISIBLE_DEVICES="$SLURM_LOCALID"; ' if per == "gpu"
                      else "")
  lines = ["#!/bin/bash"]
  lines += [f"#SBATCH --{key}={value}" for key, value in options.items() if value is not None]
  lines += [setup] if setup else []
  lines += ["set -eu"]
  lines += [
      "# Process 0 runs on the first node and serves as the coordinator of jax.distributed.",
      'coordinator=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
      'export JAXVAE_COORDINATOR="$coordinator:$((10000 + SLURM_JOB_ID % 50000))"',
      f"srun --nodes={nodes} --ntasks-per-node={tasks_per_node} --kill-on-bad-exit=1 "
      f"bash -c {shlex.quote(task)}",
  ]
  return "\n".join(lines) + "\n"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  """The launcher's options and the arguments after `--` (more `jaxvae train` flags)."""
  own, passthrough = common.split_at_dashes(argv)
  parser = argparse.ArgumentParser(prog="launch/slurm.py", description=__doc__.splitlines()[0])
  parser.add_argument("--nodes", type=int, required=True)
  parser.add_argument("--gpus_per_node", type=int, required=True)
  parser.add_argument("--per", choices=("gpu", "node"), default="gpu",
                      help="one process per GPU (default) or per node")
  parser.add_argument("--workdir", required=True, help="run directory on a file system every "
                      "node shares (or gs://BUCKET/PATH)")
  parser.add_argument("--config", help="config file, optionally :smoke (default: jaxvae's)")
  parser.add_argument("--job_name", default="jaxvae")
  parser.add_argument("--partition")
  parser.add_argument("--time", help="time limit, e.g. 24:00:00")
  parser.add_argument("--setup", help="shell line the script runs first, e.g. 'source "
                      "~/venv/bin/activate' (srun's tasks inherit its environment)")
  parser.add_argument("--python", default="python3", help="the Python with jaxvae installed")
  parser.add_argument("--script", help="where to write the script (default: JOB_NAME.sbatch)")
  parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                      help="print the script and the sbatch command, write and run nothing")
  return parser.parse_args(own), passthrough


def run(argv: list[str]) -> None:
  options, args = parse(argv)
  train_args = [f"--workdir={options.workdir}"]
  if options.config:
    common.require_file(options.config.partition(":")[0], "--config")
    train_args.append(f"--config={options.config}")
  script = sbatch_script(options.nodes, options.gpus_per_node, options.per, train_args + args,
                         job_name=options.job_name, partition=options.partition,
                         time_limit=options.time, setup=options.setup, python=options.python)
  path = options.script or f"{options.job_name}.sbatch"
  runner = common.Runner(options.dry_run)
  if options.dry_run:
    runner.note(f"{path}:")
    print(script, end="")
  else:
    common.require_program("sbatch", "run this on a SLURM login node, or add --dry-run to print "
                           "the script")
    with open(path, "w") as f:
      f.write(script)
  runner.run(["sbatch", path])


def main(argv: list[str]) -> int:
  return common.main("launch/slurm.py", lambda: run(argv))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
