"""launch/slurm.py: the sbatch script for 2 nodes x 8 GPUs, run for real under fake SLURM tools
(scontrol, srun) to check every task's coordinator, process count, id and GPU; the errors."""

import json
import os
import re
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # launch/ is a directory of scripts next to the package.

from launch import slurm  # noqa: E402


def _tool(directory, name, source):
  """An executable Python script `name` in `directory` (a fake of a cluster tool)."""
  path = directory / name
  path.write_text(f"#!{sys.executable}\n{source}")
  path.chmod(path.stat().st_mode | stat.S_IEXEC)
  return str(path)


# srun: runs its command once per task, node by node, with the variables SLURM gives each task.
_SRUN = """import os, subprocess, sys
args = sys.argv[1:]
nodes = int(next(a for a in args if a.startswith("--nodes=")).split("=")[1])
per_node = int(next(a for a in args if a.startswith("--ntasks-per-node=")).split("=")[1])
command = [a for a in args if not a.startswith("--")]
for node in range(nodes):
  for local in range(per_node):
    env = dict(os.environ, SLURM_NODEID=str(node), SLURM_LOCALID=str(local),
               SLURM_PROCID=str(node * per_node + local), SLURM_NTASKS=str(nodes * per_node))
    subprocess.run(command, env=env, check=True)
"""
# scontrol show hostnames: expands the one node list the test uses.
_SCONTROL = """import sys
assert sys.argv[1:] == ["show", "hostnames", "gpu-[07-08]"], sys.argv
print("gpu-07")
print("gpu-08")
"""
# python: prints what it was started with instead of training.
_PYTHON = """import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "setup": os.environ.get("SETUP_RAN")}))
"""


def _script(capsys, *flags):
  assert slurm.main(["--dry-run", *flags]) == 0
  out = capsys.readouterr().out
  assert out.startswith("# jaxvae.sbatch:\n#!/bin/bash\n")
  script, submit = out.split("\n", 1)[1].rsplit("\n", 2)[:2]
  return script + "\n", submit


def test_dry_run_prints_the_script_for_2_nodes_of_8_gpus_and_writes_nothing(tmp_path, capsys,
                                                                             monkeypatch):
  monkeypatch.chdir(tmp_path)
  script, submit = _script(capsys, "--nodes=2", "--gpus_per_node=8", "--workdir=/shared/run",
                           "--partition=a100", "--time=4:00:00", "--", "--config.seed=3")
  assert submit == "sbatch jaxvae.sbatch" and os.listdir(tmp_path) == []
  directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", script, flags=re.M))
  assert directives == {"job-name": "jaxvae", "nodes": "2", "ntasks-per-node": "8",
                        "gpus-per-node": "8", "output": "jaxvae-%j.log", "signal": "TERM@120",
                        "partition": "a100", "time": "4:00:00"}
  assert re.search(r"^srun --nodes=2 --ntasks-per-node=8 --kill-on-bad-exit=1 bash -c ", script,
                   flags=re.M)


@pytest.mark.parametrize("per, gpus_per_node", [("gpu", 8), ("node", 8)])
def test_the_script_gives_each_task_its_coordinator_rank_and_gpu(tmp_path, capsys, per,
                                                                 gpus_per_node):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _tool(bin_dir, "srun", _SRUN)
  _tool(bin_dir, "scontrol", _SCONTROL)
  python = _tool(bin_dir, "fake-python", _PYTHON)
  script, _ = _script(capsys, "--nodes=2", f"--gpus_per_node={gpus_per_node}", f"--per={per}",
                      "--workdir=/shared/run", "--setup=export SETUP_RAN=yes",
                      f"--python={python}", "--", "--config.seed=3")
  env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_NODELIST": "gpu-[07-08]",
         "SLURM_JOB_ID": "123456"}
  result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0, result.stderr
  tasks = [json.loads(line) for line in result.stdout.splitlines()]
  per_node = gpus_per_node if per == "gpu" else 1
  assert len(tasks) == 2 * per_node
  for rank, task in enumerate(tasks):  # The fake srun starts ranks in order, node by node.
    assert task["argv"] == ["-m", "jaxvae.cli", "train", "--workdir=/shared/run", "--config.seed=3",
                            f"--coordinator_address=gpu-07:{10000 + 123456 % 50000}",
                            f"--num_processes={2 * per_node}", f"--process_id={rank}"]
    assert task["gpu"] == (str(rank % per_node) if per == "gpu" else None)
    assert task["setup"] == "yes"


def test_submits_the_written_script_with_sbatch(tmp_path, monkeypatch, capsys):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _tool(bin_dir, "sbatch", "import sys\nprint('submitted', *sys.argv[1:])\n")
  monkeypatch.setenv("PATH", str(bin_dir))
  monkeypatch.chdir(tmp_path)
  assert slurm.main(["--nodes=1", "--gpus_per_node=2", "--workdir=w", "--job_name=vae"]) == 0
  assert capsys.readouterr().out == "+ sbatch vae.sbatch\n"
  assert "--ntasks-per-node=2" in (tmp_path / "vae.sbatch").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--nodes=2", "--gpus_per_node=8", "--workdir=w"],
     "sbatch not found on PATH; run this on a SLURM login node, or add --dry-run"),
    (["--dry-run", "--nodes=0", "--gpus_per_node=8", "--workdir=w"],
     "--nodes=0 and --gpus_per_node=8 must be >= 1"),
    (["--dry-run", "--nodes=1", "--gpus_per_node=8", "--workdir=w", "--config=nope.py:smoke"],
     "--config=nope.py not found"),
])
def test_mistakes_are_one_line_and_exit_2(tmp_path, flags, message):
  result = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "slurm.py"), *flags],
                          env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.startswith(f"launch/slurm.py: error: {message}")
  assert len(result.stderr.splitlines()) == 1 and os.listdir(tmp_path) == []
