"""The workdir lock: a second trainer on a workdir refuses at once; a dead holder's lock is taken
over; only process 0 locks; the lock goes with the run."""

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import pytest

from jaxvae.errors import UserError
from jaxvae.runtime import lock as lock_lib
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.train import train_and_evaluate

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dead_pid() -> int:
  """The pid of a process that has ended (and been reaped)."""
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def _write_lock(workdir, text: str) -> None:
  with open(os.path.join(workdir, lock_lib.LOCK_NAME), "w") as f:
    f.write(text)


def test_a_live_holder_in_another_process_refuses_with_its_pid(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from jaxvae.runtime import lock; "
       "lock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(tmp_path)],
      env=dict(os.environ, PYTHONPATH=_ROOT), stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(UserError, match=rf"--workdir={tmp_path} is in use by another trainer "
                                        rf"\(pid {holder.pid}\)") as error:
      lock_lib.acquire(str(tmp_path))
    assert "\n" not in str(error.value)
  finally:
    holder.kill()
    holder.wait()
  lock = lock_lib.acquire(str(tmp_path))  # Its holder is dead now: a stale lock.
  assert lock.held


def test_a_stale_lock_is_taken_over_with_one_line(tmp_path, capsys):
  pid = _dead_pid()
  _write_lock(tmp_path, f"{pid} {socket.gethostname()}")
  lock = lock_lib.acquire(str(tmp_path))
  out = capsys.readouterr().out
  assert out.count("\n") == 1 and "stale lock" in out and f"pid {pid}" in out
  assert (tmp_path / lock_lib.LOCK_NAME).read_text() == f"{os.getpid()} {socket.gethostname()}"
  lock.release()
  assert not (tmp_path / lock_lib.LOCK_NAME).exists()


def test_a_lock_of_another_host_refuses_and_says_how_to_clear_it(tmp_path):
  _write_lock(tmp_path, f"{_dead_pid()} another-host")
  with pytest.raises(UserError, match=r"trainer on host another-host .*delete .*train\.lock"):
    lock_lib.acquire(str(tmp_path))


def test_release_leaves_a_lock_taken_over_by_another_process(tmp_path):
  lock = lock_lib.acquire(str(tmp_path))
  _write_lock(tmp_path, f"1 {socket.gethostname()}")
  lock.release()
  assert (tmp_path / lock_lib.LOCK_NAME).exists()


def test_only_process_zero_takes_the_lock(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  assert not lock_lib.acquire(str(tmp_path)).held
  assert not (tmp_path / lock_lib.LOCK_NAME).exists()


def test_a_second_trainer_refuses_and_a_killed_ones_lock_is_taken_over(tmp_path, smoke_config,
                                                                      long_trainer):
  workdir = str(tmp_path / "run")
  command, env = long_trainer(workdir, 10)
  first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
  try:
    deadline = time.monotonic() + 120
    for line in first.stdout:  # Wait until it has saved a checkpoint.
      if line.startswith("step 20:") or time.monotonic() > deadline:
        break
    second = subprocess.run(command[:-4] + ["--config.train.num_steps=5"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert first.poll() is None  # The first trainer runs on.
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  assert second.returncode == 2, second.stderr
  assert second.stderr.splitlines() == [
      f"jaxvae: error: --workdir={workdir} is in use by another trainer (pid {first.pid}); wait "
      f"for it to end or stop it (kill {first.pid}), or use another --workdir"]
  assert "Resuming" not in second.stdout
  with open(os.path.join(workdir, "config.json")) as f:  # The refused trainer wrote nothing.
    assert '"num_steps": 1000000' in f.read()

  step = Checkpoints(workdir, read_only=True).latest_step()
  smoke_config.train.num_steps = step + 2
  record = train_and_evaluate(smoke_config, workdir)  # The killed trainer left a stale lock.
  assert record["step"] == step + 2
  assert not os.path.exists(os.path.join(workdir, lock_lib.LOCK_NAME))
