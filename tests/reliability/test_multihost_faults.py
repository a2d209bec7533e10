"""A 2-process job on localhost: SIGTERM to both (preemption) leaves a checkpoint and the restarted
job resumes from it; then one process dies (SIGKILL) and the other exits with one clear line within
a bounded time instead of waiting for its peer for ever; the checkpoints stay intact."""

import os
import signal
import subprocess
import time

from jaxvae.runtime import distributed
from jaxvae.runtime.checkpoint import Checkpoints

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(workdir, data_dir, logs):
  args = ["train", f"--workdir={workdir}",
          "--config=" + os.path.join(_ROOT, "configs", "digits_vae.py") + ":smoke",
          f"--config.data.data_dir={data_dir}", "--config.train.num_steps=1000000",
          "--config.train.checkpoint_every=10", "--config.train.log_every=10",
          "--config.train.steps_per_call=5", "--heartbeat_timeout=10"]
  processes = distributed.local_processes(args, num_processes=2, devices_per_process=1)
  cache = dict(JAX_COMPILATION_CACHE_DIR=os.path.join(os.path.dirname(workdir), "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # The restart compiles nothing.
  return [subprocess.Popen(list(p.argv), env={**os.environ, **dict(p.env), **cache}, cwd=_ROOT,
                           stdout=open(log, "w"), stderr=subprocess.STDOUT)
          for p, log in zip(processes, logs)]


def _wait_for_a_new_step(workdir, after, processes, timeout=240):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and all(p.poll() is None for p in processes):
    directory = os.path.join(workdir, "checkpoints")
    names = os.listdir(directory) if os.path.isdir(directory) else []
    if any(name.isdigit() and int(name) > after for name in names):
      return
    time.sleep(0.2)
  raise AssertionError(f"no checkpoint after step {after} within {timeout} s")


def _read(path):
  with open(path) as f:
    return f.read()


def test_preempted_job_resumes_and_a_dead_peer_ends_the_other_process(tmp_path, smoke_config):
  from jaxvae import data as data_lib

  data_lib.load_split(smoke_config.data, "train")  # Prepared once, before two processes race.
  workdir, data_dir = str(tmp_path / "run"), smoke_config.data.data_dir
  logs = [str(tmp_path / f"process_{rank}.log") for rank in range(2)]
  processes = _start(workdir, data_dir, logs)
  try:
    _wait_for_a_new_step(workdir, 0, processes)
    for p in processes:
      p.send_signal(signal.SIGTERM)
    codes = [p.wait(timeout=120) for p in processes]
    assert codes == [0, 0], [_read(log)[-3000:] for log in logs]
    step = Checkpoints(workdir, read_only=True).latest_step()
    assert all(f"Preempted (SIGTERM) at step {step}:" in _read(log) for log in logs)

    processes = _start(workdir, data_dir, logs)
    _wait_for_a_new_step(workdir, step, processes)
    assert f"Resuming from step {step} in" in _read(logs[0])
    processes[1].kill()
    killed = time.monotonic()
    code = processes[0].wait(timeout=120)
    elapsed = time.monotonic() - killed
  finally:
    for p in processes:
      p.kill()
  output = _read(logs[0])
  assert code != 0 and elapsed < 60, (code, elapsed, output[-3000:])
  errors = [line for line in output.splitlines() if "error" in line.lower()]
  assert ("jaxvae: error: process 0 of 2 stopped:" in output or
          "Terminating process because the JAX distributed service detected fatal errors" in
          output), output[-3000:]
  assert errors, output[-3000:]
  reader = Checkpoints(workdir, read_only=True)
  assert reader.latest_step() > step and not any(
      name.endswith(".damaged") for name in os.listdir(reader.directory))
