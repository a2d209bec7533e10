"""The evaluation job: a process next to the trainer that evaluates every checkpoint once.

    jaxvae eval --workdir=DIR --follow [--num_samples=1,10,100,1000,5000] [--poll_seconds=10]

It waits for new checkpoints, evaluates each finalized step exactly once (parameters only, the EMA
when the run keeps one) and exits after the final step (`train.num_steps` of the run's config.json).
The JSONL of results is the ledger, so a restarted job repeats nothing. Orbax writes each step to a
temporary directory and renames it when complete, and only renamed (finalized) steps are listed, so
a half-written checkpoint is never read. A step the trainer deletes (keep-last-N) before or during
its restore is skipped with a note; a damaged one (it stays but cannot be restored) with a
warning. With several processes, process 0 decides what to evaluate next and tells the others, so
they never disagree about the file system.
"""

import sys
import time
from collections.abc import Callable, Sequence

from etils import epath

from jaxvae import config as config_lib
from jaxvae.errors import UserError
from jaxvae.eval import log_likelihood as ll
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.runtime import distributed
from jaxvae.runtime import workdir as workdir_lib

_NOTHING = -1


def _open_checkpoints(workdir: str, attempts: int = 5) -> checkpoint_lib.Checkpoints:
  """A read-only view of the checkpoints. Orbax stats every step while listing them, so a step the
  trainer deletes meanwhile raises `OSError`: look again (the deletion is over by then)."""
  for attempt in range(attempts):
    try:
      return checkpoint_lib.Checkpoints(workdir, read_only=True)
    except OSError:
      if attempt == attempts - 1:
        raise
      time.sleep(0.05 * 2**attempt)
  raise AssertionError("unreachable")


def _finalized_steps(workdir: str) -> list[int]:
  """The steps Orbax lists as complete (never its temporary, half-written directories)."""
  if not epath.Path(workdir_lib.checkpoints_dir(workdir)).is_dir():
    return []
  checkpoints = _open_checkpoints(workdir)
  try:
    return checkpoints.all_steps()
  finally:
    checkpoints.close()


def _vanished(workdir: str, step: int, waits: tuple[float, ...] = (0, 0.2, 0.5, 1, 2)) -> bool:
  """Whether `step` is gone, or being deleted: a deletion removes files first and the step's
  directory last, so a read can fail while the step is still listed; look again a few times."""
  for wait in waits:
    time.sleep(wait)
    if step not in _finalized_steps(workdir):
      return True
  return False


def follow(workdir: str, *, split: str | None = None,
           num_samples: int | Sequence[int] | None = None, refine_steps: int | None = None,
           poll_seconds: float = 10.0, timeout_seconds: float | None = None,
           verbose: bool = True, sleep: Callable[[float], None] = time.sleep,
           model=None) -> list[int]:
  """Evaluates each new checkpoint of `workdir` once, until the final one; returns the steps done.

  Args:
    workdir: the run directory the trainer writes (it may not exist yet).
    split, num_samples, refine_steps, model: as in `jaxvae.eval.evaluate`.
    poll_seconds: how often to look for new checkpoints.
    timeout_seconds: give up (a `UserError`) after this long without a new checkpoint; None waits
      for ever.

  Returns:
    The steps evaluated (or found already in the ledger), in order; steps the trainer deleted
    before they could be read are left out.
  """
  if poll_seconds <= 0:
    raise UserError(f"--poll_seconds must be positive, got {poll_seconds}")
  if timeout_seconds is not None and timeout_seconds <= 0:
    raise UserError(f"--timeout must be positive, got {timeout_seconds}")
  config_path = workdir_lib.config_path(workdir)
  last_progress = time.monotonic()

  def wait(what: str) -> None:
    """Sleeps a poll, but never past the timeout, after which it gives up (a `UserError`)."""
    left = None if timeout_seconds is None else timeout_seconds - (time.monotonic() - last_progress)
    if left is not None and left <= 0:
      raise UserError(f"gave up after {timeout_seconds:g} s without {what} in {workdir}; is the "
                      f"trainer running? Raise --timeout to wait longer")
    sleep(poll_seconds if left is None else min(poll_seconds, left))

  while not distributed.agree(int(epath.Path(config_path).exists())):
    wait("a config.json")
  try:
    config = config_lib.load_config(config_path)
  except UserError:  # The trainer may be writing it right now: one more look, then the error.
    sleep(poll_seconds)
    config = config_lib.load_config(config_path)
  evaluator = ll.Evaluator(config, split, num_samples, refine_steps, model)
  final_step = config.train.num_steps
  done, skipped = [], set()
  while True:
    final_step = distributed.agree(_final_step(config_path, final_step))
    # Every process lists (Orbax's manager synchronizes processes); process 0's choice counts.
    pending = [s for s in _finalized_steps(workdir) if s not in skipped and s not in done]
    step = distributed.agree(pending[0] if pending else _NOTHING)
    if step == _NOTHING:
      if final_step in done or final_step in skipped:
        return done
      wait("a new checkpoint")
      continue
    last_progress = time.monotonic()
    if _evaluate_if_present(evaluator, workdir, step, verbose):
      done.append(step)
    else:
      skipped.add(step)


def _final_step(config_path: str, previous: int) -> int:
  """`train.num_steps` of the run's config.json now (a resumed run may raise it); `previous` while
  a restarted trainer is rewriting the file."""
  try:
    return config_lib.load_config(config_path).train.num_steps
  except UserError:
    return previous


def _evaluate_if_present(evaluator: ll.Evaluator, workdir: str, step: int, verbose: bool) -> bool:
  """Evaluates `step`; False (with a note) if the trainer deleted it before or while restoring."""
  checkpoints = _open_checkpoints(workdir)
  try:
    ll.evaluate_step(evaluator, checkpoints, workdir, step, verbose)
    return True
  except Exception as e:
    if distributed.agree(int(_vanished(workdir, step))):
      if verbose:
        print(f"step {step}: skipped, its checkpoint was deleted (by the trainer's keep-last-N "
              f"policy) before it could be read", flush=True)
      return False
    if not isinstance(e, checkpoint_lib.UnreadableCheckpoint):
      raise
    print(f"warning: step {step}: skipped, its checkpoint is damaged ({e.reason})",
          file=sys.stderr, flush=True)
    return False
  finally:
    checkpoints.close()

