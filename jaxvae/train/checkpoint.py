"""Orbax checkpoints of the train state, behind one small class (an Orbax API change is a one-file change).

Layout: `WORKDIR/checkpoints/<step>/{params,opt_state,meta[,ema_params]}`; `meta` holds the step,
the run's random key and the skip counters. Saves are asynchronous and atomic (Orbax writes to a
temporary directory and renames it when complete), so a save killed halfway never damages the last
good checkpoint and a reader never sees a half-written step. Retention: the last
`train.keep_checkpoints` steps, plus every step that is a multiple of `train.keep_every`.

The data iterator needs no saved state: the batch of step `s` is a pure function of (seed, s)
(`jaxvae.data.train_batches` is indexed by step), so a run resumed at step `s` reads exactly the
batches an uninterrupted run would.

Restores take a target of arrays or `ShapeDtypeStruct`s with shardings, and lay the arrays out as
the target says, so a checkpoint saved on one mesh (say 8 devices) restores onto another (1 device).
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxvae.errors import UserError

_ITEMS = ("params", "opt_state", "meta", "ema_params")
_META = ("step", "key", "skipped_updates", "consecutive_skips")


def _abstract(tree: Any) -> Any:
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


class Checkpoints:
  """The checkpoints of one workdir: `save`, `restore`, `restore_params`, `latest_step`."""

  def __init__(self, workdir: str, max_to_keep: int | None = None, read_only: bool = False,
               keep_every: int | None = None):
    """`read_only`: for readers (eval, sample), which never create directories or save.

    `max_to_keep`: keep the last N steps (None: all); `keep_every`: also keep multiples of M.
    """
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, keep_period=keep_every or None,
                                           create=not read_only,
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

  def has_ema(self, step: int) -> bool:
    """Whether the checkpoint of `step` holds an EMA of the parameters."""
    return os.path.isdir(os.path.join(self.directory, str(step), "ema_params"))

  def save(self, step: int, state: Any) -> None:
    """Starts an asynchronous save of the train state as step `step` (every process calls it)."""
    items = dict(params=state.params, opt_state=state.opt_state,
                 meta={name: getattr(state, name) for name in _META})
    if state.ema_params is not None:
      items["ema_params"] = state.ema_params
    self._manager.save(step, args=ocp.args.Composite(
        **{name: ocp.args.StandardSave(item) for name, item in items.items()}), force=True)

  def restore(self, step: int, target: Any) -> Any:
    """The train state at `step`, shaped and sharded like `target` (arrays or `ShapeDtypeStruct`s)."""
    targets = dict(params=target.params, opt_state=target.opt_state,
                   meta={name: getattr(target, name) for name in _META})
    if target.ema_params is not None:
      if not self.has_ema(step):
        raise UserError(f"checkpoint {self.directory}/{step} has no EMA of the parameters but "
                        f"train.ema_decay is set; resume with the run's own config or a new "
                        f"--workdir")
      targets["ema_params"] = target.ema_params
    restored = self._restore(step, **targets)
    return target.replace(params=restored.params, opt_state=restored.opt_state,
                          ema_params=restored.get("ema_params"), **restored.meta)

  def restore_params(self, step: int, target: Any) -> Any:
    """The parameters at `step` for evaluation and sampling: their EMA when the run keeps one
    (train.ema_decay > 0), else the raw parameters. No optimizer state is read."""
    if self.has_ema(step):
      return self._restore(step, ema_params=target).ema_params
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
