"""Orbax checkpoints of the train state, behind one small class (an Orbax API change is a one-file change).

Layout: `WORKDIR/checkpoints/<step>/{params,opt_state,meta,guard[,ema_params][,model_state]}`;
`meta` holds the step, the run's random key and the skip counters; `guard` the state of the guards
against bad updates (`jaxvae.train.state.Guard`: the gradient norm's running statistics, the
longest skip run, the rollbacks and their learning-rate scale; a checkpoint written before it
existed restores with the target's fresh values); `model_state` the model's collections other than
its parameters (e.g. the VQ-VAE's codebook statistics), for the models that have any. Saves are
asynchronous and atomic (Orbax writes to a
temporary directory and renames it when complete), so a save killed halfway never damages the last
good checkpoint and a reader never sees a half-written step. Retention: the last
`train.keep_checkpoints` steps, plus every step that is a multiple of `train.keep_every`.

The data iterator needs no saved state: the batch of step `s` is a pure function of (seed, s)
(`jaxvae.data.train_batches` is indexed by step), so a run resumed at step `s` reads exactly the
batches an uninterrupted run would.

Restores take a target of arrays or `ShapeDtypeStruct`s with shardings, and lay the arrays out as
the target says, so a checkpoint saved on one mesh (say 8 devices) restores onto another (1 device).

Damage (files truncated, deleted or emptied after the save, e.g. by a full disk or a copy cut
short): a step that Orbax cannot restore raises `UnreadableCheckpoint`. The trainer's `restore_latest` then
falls back to the newest step that restores, and sets each newer one aside as `<step>.damaged`
(reported in one warning line, never deleted), so a later save of that step cannot collide with it.
"""

import os
import sys
from typing import Any

import flax.serialization
import jax
import orbax.checkpoint as ocp
from etils import epath

from jaxvae.errors import UserError
from jaxvae.runtime import workdir as workdir_lib

_ITEMS = ("params", "opt_state", "meta", "guard", "ema_params", "model_state")
_META = ("step", "key", "skipped_updates", "consecutive_skips")


class UnreadableCheckpoint(UserError):
  """A checkpoint step that cannot be restored into the target: its files are damaged, or it was
  written by a different model."""

  def __init__(self, directory: str, step: int, reason: str):
    self.step, self.reason = step, reason
    super().__init__(f"checkpoint {directory}/{step} cannot be restored ({reason}): it is damaged, "
                     f"or it does not fit this model (written by a different model config); use "
                     f"a new --workdir or the config the run was started with")


def _abstract(tree: Any) -> Any:
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


class Checkpoints:
  """The checkpoints of one workdir: `save`, `restore`, `restore_params`, `latest_step`."""

  def __init__(self, workdir: str, max_to_keep: int | None = None, read_only: bool = False,
               keep_every: int | None = None):
    """`read_only`: for readers (eval, sample), which never create directories or save.

    `max_to_keep`: keep the last N steps (None: all); `keep_every`: also keep multiples of M.
    """
    local = "://" not in workdir  # gs://BUCKET/PATH stays as it is.
    self.directory = workdir_lib.checkpoints_dir(os.path.abspath(workdir) if local else workdir)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, keep_period=keep_every or None,
                                           create=not read_only,
                                           cleanup_tmp_directories=not read_only,
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

  def _has(self, step: int, item: str) -> bool:
    return epath.Path(self.directory, str(step), item).is_dir()

  def save(self, step: int, state: Any) -> None:
    """Starts an asynchronous save of the train state as step `step` (every process calls it)."""
    items = dict(params=state.params, opt_state=state.opt_state,
                 meta={name: getattr(state, name) for name in _META},
                 guard=flax.serialization.to_state_dict(state.guard))
    if state.ema_params is not None:
      items["ema_params"] = state.ema_params
    if state.model_state:
      items["model_state"] = state.model_state
    self._manager.save(step, args=ocp.args.Composite(
        **{name: ocp.args.StandardSave(item) for name, item in items.items()}), force=True)

  def restore_latest(self, target: Any) -> Any | None:
    """The train state of the newest step that restores (see `restore`); None if there is none.

    Newer steps that fail while an older one restores are damaged: each is moved aside to
    `<step>.damaged` with one warning line. If no step restores, nothing is moved and the newest
    step's `UnreadableCheckpoint` is raised (a different model, or every checkpoint damaged).
    """
    damaged = []
    for step in reversed(self.all_steps()):
      try:
        state = self.restore(step, target)
      except UnreadableCheckpoint as e:
        damaged.append(e)
        continue
      for e in damaged:
        self._set_aside(e, step)
      if damaged:
        self._manager.reload()
      return state
    if damaged:
      raise damaged[0]
    return None

  def _set_aside(self, damaged: UnreadableCheckpoint, good_step: int) -> None:
    """Renames the damaged step's directory to `<step>.damaged` (or `.damaged.2`, ...) on process 0,
    then waits for every process."""
    from jax.experimental import multihost_utils

    if jax.process_index() == 0:
      source = epath.Path(self.directory, str(damaged.step))
      target, copy = epath.Path(f"{source}.damaged"), 1
      while target.exists():
        copy += 1
        target = epath.Path(f"{source}.damaged.{copy}")
      source.rename(target)
      print(f"warning: checkpoint step {damaged.step} is damaged ({damaged.reason}); moved it to "
            f"{target} and resumed from step {good_step}", file=sys.stderr, flush=True)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"jaxvae set aside damaged step {damaged.step}")

  def restore(self, step: int, target: Any) -> Any:
    """The train state at `step`, shaped and sharded like `target` (arrays or `ShapeDtypeStruct`s).

    A step saved without the `guard` item (by a version before it) restores with `target.guard`,
    which should then hold the fresh values (arrays, not `ShapeDtypeStruct`s).
    """
    targets = dict(params=target.params, opt_state=target.opt_state,
                   meta={name: getattr(target, name) for name in _META})
    if self._has(step, "guard"):
      targets["guard"] = flax.serialization.to_state_dict(target.guard)
    if target.model_state:
      if not self._has(step, "model_state"):
        raise UnreadableCheckpoint(self.directory, step, "it holds no model state, which this "
                                   "model has (e.g. a VQ-VAE's codebook statistics)")
      targets["model_state"] = target.model_state
    if target.ema_params is not None:
      if not self._has(step, "ema_params"):
        raise UserError(f"checkpoint {self.directory}/{step} has no EMA of the parameters but "
                        f"train.ema_decay is set; resume with the run's own config or a new "
                        f"--workdir")
      targets["ema_params"] = target.ema_params
    restored = self._restore(step, **targets)
    guard = restored.get("guard")
    return target.replace(params=restored.params, opt_state=restored.opt_state,
                          guard=target.guard if guard is None else
                          flax.serialization.from_state_dict(target.guard, guard),
                          ema_params=restored.get("ema_params"),
                          model_state=restored.get("model_state", target.model_state),
                          **restored.meta)

  def restore_variables(self, step: int, target: dict) -> dict:
    """The model's variables at `step` for evaluation and sampling, shaped like `target`
    (`{'params': ..., <state>: ...}`): the EMA of the parameters when the run keeps one
    (train.ema_decay > 0), else the raw parameters. No optimizer state is read."""
    params, state = target["params"], {k: v for k, v in target.items() if k != "params"}
    name = "ema_params" if self._has(step, "ema_params") else "params"
    targets = {name: params}
    if state:
      if not self._has(step, "model_state"):
        raise UnreadableCheckpoint(self.directory, step, "it holds no model state, which this "
                                   "model has (e.g. a VQ-VAE's codebook statistics)")
      targets["model_state"] = state
    restored = self._restore(step, **targets)
    return {"params": restored[name], **restored.get("model_state", {})}

  def _restore(self, step: int, **targets: Any) -> Any:
    args = {name: ocp.args.StandardRestore(_abstract(t)) for name, t in targets.items()}
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**args))
    except Exception as e:  # Orbax and TensorStore raise many types, some a bare Exception.
      reason = (str(e).splitlines() or [type(e).__name__])[0].split(". See full")[0][:200]
      raise UnreadableCheckpoint(self.directory, step, reason) from None

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
