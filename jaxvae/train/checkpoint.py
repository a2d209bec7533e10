"""Orbax checkpoints of the train state, behind one small class (an Orbax API change is a one-file change).

Layout: `WORKDIR/checkpoints/<step>/{params,opt_state}`. Saves are asynchronous and atomic (Orbax
writes to a temporary directory and renames it), so a reader never sees a half-written step.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxvae.errors import UserError

_ITEMS = ("params", "opt_state")


def _abstract(tree: Any) -> Any:
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


class Checkpoints:
  """The checkpoints of one workdir: `save`, `restore`, `restore_params`, `latest_step`."""

  def __init__(self, workdir: str, max_to_keep: int | None = None, read_only: bool = False):
    """`read_only`: for readers (eval, sample), which never create directories or save."""
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                           enable_async_checkpointing=not read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=_ITEMS)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def resolve_step(self, step: int | None = None) -> int:
    """`step` if it was saved, else the latest when `step` is None; otherwise a `UserError`."""
    available = self.all_steps()
    if not available:
      raise UserError(f"no checkpoint in {self.directory}; train first with "
                      f"jaxvae train --workdir={os.path.dirname(self.directory)}")
    if step is None:
      return available[-1]
    if step not in available:
      raise UserError(f"no checkpoint for step {step} in {self.directory}; "
                      f"available steps: {', '.join(map(str, available))}")
    return step

  def save(self, step: int, state: Any) -> None:
    """Starts an asynchronous save of `state.params` and `state.opt_state` as step `step`."""
    self._manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(state.params),
        opt_state=ocp.args.StandardSave(state.opt_state)), force=True)

  def restore(self, step: int, target: Any) -> Any:
    """State at `step`, shaped and sharded like `target` (arrays or `ShapeDtypeStruct`s)."""
    restored = self._restore(step, params=target.params, opt_state=target.opt_state)
    return target.replace(params=restored.params, opt_state=restored.opt_state)

  def restore_params(self, step: int, target: Any) -> Any:
    """Only the parameters at `step` (no optimizer state is read)."""
    return self._restore(step, params=target).params

  def _restore(self, step: int, **targets: Any) -> Any:
    args = {name: ocp.args.StandardRestore(_abstract(t)) for name, t in targets.items()}
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**args))
    except (ValueError, KeyError, TypeError) as e:
      raise UserError(f"checkpoint {self.directory}/{step} does not fit this model "
                      f"({str(e).splitlines()[0][:200]}); it was written by a different model "
                      f"config: use a new --workdir or the config the run was started with") from None

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
