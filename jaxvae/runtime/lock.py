"""One trainer per workdir: `acquire(workdir)` takes `workdir/train.lock` or refuses at once.

The lock file holds `PID HOSTNAME` of the trainer that owns the workdir. A second trainer refuses
with one `UserError` line naming the workdir and the holder. A lock whose holder is dead (same
host, no such process) is stale: it is taken over with a one-line message, so a killed trainer
never leaves the workdir stuck. Only process 0 of a multi-process job takes it. Readers (`jaxvae
eval --follow`, `jaxvae sample`) never take it: they only read finalized checkpoints.
"""

import atexit
import os
import socket

import jax
from etils import epath

from jaxvae.errors import UserError

LOCK_NAME = "train.lock"


def _alive(pid: int) -> bool:
  """Whether a process `pid` exists on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # It exists, owned by another user.
    return True
  return True


def _create(path: epath.Path, text: str) -> bool:
  """Creates `path` holding `text` unless it exists; False if it does. Atomic on a local disk
  (O_EXCL); on object stores (gs://) a look, then a write."""
  if "://" not in str(path):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      f.write(text)
    return True
  if path.exists():
    return False
  path.write_text(text)
  return True


class WorkdirLock:
  """The lock of one workdir, held by this process until `release()` (or its exit)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = epath.Path(workdir) / LOCK_NAME
    self.owner = f"{os.getpid()} {socket.gethostname()}"
    self.held = False

  def acquire(self) -> "WorkdirLock":
    """Takes the lock, or raises `UserError` if a live trainer holds it."""
    for _ in range(3):  # A holder may release between our look and our create: look again.
      if _create(self.path, self.owner):
        self.held = True
        atexit.register(self._release_at_exit)
        return self
      try:
        holder = self.path.read_text()
      except FileNotFoundError:
        continue
      pid, _, host = holder.strip().partition(" ")
      if host != socket.gethostname() or not pid.isdigit():
        raise UserError(f"--workdir={self.workdir} is in use by a trainer on host {host or '?'} "
                        f"(pid {pid or '?'}); use another --workdir, or delete {self.path} if "
                        f"that process is gone")
      if int(pid) != os.getpid() and _alive(int(pid)):
        raise UserError(f"--workdir={self.workdir} is in use by another trainer (pid {pid}); "
                        f"wait for it to end or stop it (kill {pid}), or use another --workdir")
      if int(pid) != os.getpid():  # Our own pid: an earlier call of this process that raised.
        print(f"Taking over the stale lock {self.path} of pid {pid}, which no longer runs",
              flush=True)
      self.path.unlink(missing_ok=True)
    raise UserError(f"cannot take the lock {self.path}: other processes keep taking it; is "
                    f"another trainer starting on --workdir={self.workdir}?")

  def release(self) -> None:
    """Removes the lock file if this process still holds it."""
    if not self.held:
      return
    self.held = False
    atexit.unregister(self._release_at_exit)
    try:
      if self.path.read_text() == self.owner:
        self.path.unlink(missing_ok=True)
    except FileNotFoundError:
      pass

  def _release_at_exit(self) -> None:
    """`release` when the process ends without it (an error before the trainer's `finally`); at
    that point a lock left behind (file system gone) is only taken over later as stale."""
    try:
      self.release()
    except Exception:  # noqa: BLE001 - nothing is left to report to at exit.
      pass


def acquire(workdir: str) -> WorkdirLock:
  """Takes `workdir`'s lock on process 0 (other processes get an unheld lock); see the module."""
  lock = WorkdirLock(workdir)
  return lock.acquire() if jax.process_index() == 0 else lock
