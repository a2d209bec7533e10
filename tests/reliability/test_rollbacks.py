"""Rollbacks: past train.max_consecutive_skips skipped updates in a row, the run goes back to its
last checkpoint (or its initial state) with the learning rate scaled by train.rollback_lr_factor,
at most train.max_rollbacks times, each in one line and one metrics record; then it stops with the
clear error, its last good checkpoint intact. A run that rolled back resumes bit for bit."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae.errors import UserError
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.metrics import read_jsonl
from jaxvae.train import train_and_evaluate
from jaxvae.train import state as state_lib
from kill_harness import restore_target

_TIMINGS = ("step_time", "examples_per_sec", "save_seconds", "image_seconds")


def _config(smoke_config, **train):
  config = smoke_config
  config.train.progress_bar, config.eval.after_training = False, False
  config.train.max_consecutive_skips, config.train.keep_checkpoints = 3, 10
  config.train.update(train)
  return config


def _states(workdir):
  reader, target = Checkpoints(workdir, read_only=True), restore_target(workdir)
  return {step: reader.restore(step, target) for step in reader.all_steps()}


def _records(workdir):
  return [{k: v for k, v in r.items() if k not in _TIMINGS}
          for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))]


def _rollback_lines(out: str) -> list[str]:
  return [line for line in out.splitlines() if line.startswith("Rollback ")]


def test_a_persistent_nan_rolls_back_max_rollbacks_times_then_stops_with_the_checkpoint_intact(
    tmp_path, smoke_config, poison_batches, capsys):
  workdir = str(tmp_path)
  config = _config(smoke_config, num_steps=10, checkpoint_every=5, max_rollbacks=2)
  train_and_evaluate(config, workdir)
  before = _states(workdir)

  config.train.num_steps = 20
  poison_batches(set(range(10, 20)))  # Steps 11 to 20: NaN, again after each rollback.
  with pytest.raises(UserError) as error:
    train_and_evaluate(config, workdir)
  assert str(error.value).startswith(
      "the last 5 updates (to step 15) were all skipped for non-finite or exploding gradients, "
      "more than train.max_consecutive_skips=3, even after train.max_rollbacks=2 rollbacks with "
      "the learning rate scaled to 0.25; the last good checkpoint (step 10) is intact.")
  assert _rollback_lines(capsys.readouterr().out) == [
      f"Rollback {n}/2 at step 15: the last 5 updates were skipped "
      f"(train.max_consecutive_skips=3); back to the checkpoint of step 10 with the learning "
      f"rate scaled by {scale}" for n, scale in ((1, 0.5), (2, 0.25))]
  records = _records(workdir)
  assert [(r["step"], r.get("rollback")) for r in records] == [
      (5, None), (10, None), (10, 1), (10, 2), (15, None)]
  assert [(r["rolled_back_from_step"], r["learning_rate_scale"], r["consecutive_skips"])
          for r in records[2:4]] == [(15, 0.5, 5), (15, 0.25, 5)]
  assert records[-1]["skip_rate"] == 1.0 and records[-1]["longest_skip_run"] == 5
  after = _states(workdir)
  assert sorted(after) == [5, 10]  # Nothing saved of the skipping states.
  jax.tree.map(np.testing.assert_array_equal, after, before)


def test_a_diverging_learning_rate_rolls_back_to_the_initial_state_and_trains_backed_off(
    tmp_path, smoke_config, capsys):
  backed_off = str(tmp_path / "backed_off")
  config = _config(smoke_config, num_steps=10, checkpoint_every=10, learning_rate=8.0,
                   max_rollbacks=1, rollback_lr_factor=1 / 64)
  train_and_evaluate(config, backed_off)  # Step 1 applied, then every update skipped.
  assert _rollback_lines(capsys.readouterr().out) == [
      "Rollback 1/1 at step 5: the last 4 updates were skipped (train.max_consecutive_skips=3); "
      "back to the initial state with the learning rate scaled by 0.015625"]
  records = _records(backed_off)
  assert [(r["step"], r.get("rollback")) for r in records] == [(0, 1), (5, None), (10, None)]
  assert [r["skip_rate"] for r in records[1:]] == [0.0, 0.0]
  assert records[-1]["learning_rate"] == 0.125
  state = _states(backed_off)[10]
  assert int(state.guard.rollbacks) == 1 and int(state.skipped_updates) == 0
  assert int(state.guard.longest_skip_run) == 4  # The discarded steps' run counts.

  plain = str(tmp_path / "plain")  # The oracle: the backed-off rate from the start (8 / 64 and
  config.train.learning_rate, config.train.max_rollbacks = 0.125, 0  # 0.125 scale exactly).
  train_and_evaluate(config, plain)
  plain_state = _states(plain)[10]
  jax.tree.map(np.testing.assert_array_equal, (state.params, state.opt_state),
               (plain_state.params, plain_state.opt_state))


def test_a_run_resumed_after_a_rollback_equals_the_uninterrupted_run(tmp_path, smoke_config,
                                                                     monkeypatch):
  # The learning rate jumps to a diverging 10 at step 13; step 14 on is skipped until the rollback
  # at step 20 goes back to checkpoint 10, where 10 * 0.01 trains.
  monkeypatch.setattr(state_lib, "make_schedule",
                      lambda train: lambda step: jnp.where(step < 12, 1e-3, 10.0))
  config = _config(smoke_config, num_steps=30, checkpoint_every=10, max_rollbacks=1,
                   rollback_lr_factor=0.01)
  reference = str(tmp_path / "reference")
  train_and_evaluate(config, reference)
  expected = _records(reference)
  rollbacks = [r for r in expected if "rollback" in r]
  assert [(r["step"], r["rolled_back_from_step"]) for r in rollbacks] == [(10, 20)]

  resumed = str(tmp_path / "resumed")
  config.train.num_steps = 20  # Stops after the rollback and checkpoint 20 (backed off).
  train_and_evaluate(config, resumed)
  killed = str(tmp_path / "killed")  # As if killed after the rollback, before checkpoint 20.
  shutil.copytree(resumed, killed)
  shutil.rmtree(os.path.join(killed, "checkpoints", "20"))
  config.train.num_steps = 30
  reference_states = _states(reference)
  for workdir in (resumed, killed):
    train_and_evaluate(config, workdir)
    states = _states(workdir)
    assert sorted(states) == sorted(reference_states) == [10, 20, 30]
    jax.tree.map(np.testing.assert_array_equal, states, reference_states)
    assert _records(workdir) == expected
  assert int(reference_states[30].guard.rollbacks) == 1
  np.testing.assert_allclose(float(reference_states[30].guard.learning_rate_scale), 0.01)
