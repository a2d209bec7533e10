"""Numerical faults: a batch with inf, a batch whose gradient explodes (train.skip_grad_norm) and a
diverging learning rate. Each bad update is skipped (parameters and optimizer state unchanged),
counted and reported; past train.max_consecutive_skips the run stops cleanly (exit 2, one message)
with its last checkpoint intact. (NaN batches: tests/train/test_checkpoints.py.)"""


import jax
import numpy as np
import pytest

from jaxvae.cli import main
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.train import loop, train_and_evaluate
from jaxvae.runtime.metrics import read_jsonl
from kill_harness import restore_target


def _poison(monkeypatch, values):
  """The train batch of step index i (0-based) filled with `values[i]` where given."""
  original = loop.data_lib.train_batches

  def poisoned(config, split):
    def poison(index, batch):
      if index in values:
        return {**batch, "image": np.full_like(batch["image"], values[index])}
      return batch
    return original(config, split).map_with_index(poison)

  monkeypatch.setattr(loop.data_lib, "train_batches", poisoned)


def _states(workdir):
  """The train state of every checkpoint step of `workdir`, restored on one device."""
  reader, target = Checkpoints(workdir, read_only=True), restore_target(workdir)
  return {step: reader.restore(step, target) for step in reader.all_steps()}


def _same(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves((a.params, a.opt_state)),
                                                  jax.tree.leaves((b.params, b.opt_state))))


def test_inf_batch_and_exploding_gradient_are_skipped_counted_and_reported(
    tmp_path, smoke_config, monkeypatch, capsys):
  train = smoke_config.train
  train.num_steps, train.checkpoint_every, train.keep_checkpoints = 10, 1, 10
  train.steps_per_call, train.skip_grad_norm = 1, 1e4
  _poison(monkeypatch, {3: np.inf, 6: 1e6})  # Steps 4 and 7: inf; finite with a huge gradient.
  train_and_evaluate(smoke_config, str(tmp_path))
  states = _states(str(tmp_path))
  assert sorted(states) == list(range(1, 11))
  skipped = [step for step in range(2, 11) if _same(states[step], states[step - 1])]
  assert skipped == [4, 7]
  assert [int(states[s].skipped_updates) for s in (3, 4, 7, 10)] == [0, 1, 2, 2]
  assert int(states[7].consecutive_skips) == 1 and int(states[8].consecutive_skips) == 0
  metrics = read_jsonl(str(tmp_path / "metrics.jsonl"))
  assert [(m["skipped_in_interval"], m["skipped_updates"]) for m in metrics] == [(1, 1), (1, 2)]
  assert all(np.isfinite(m["loss"]) and m["grad_norm"] < train.skip_grad_norm for m in metrics)
  out = capsys.readouterr().out
  assert "step 5/10: " in out and "skipped 1" in out and "skipped 2" in out


def test_a_diverging_learning_rate_stops_cleanly_with_the_last_checkpoint_intact(
    tmp_path, tfds_dir, capsys):
  workdir = str(tmp_path / "run")
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", "train", "--config=configs/digits_vae.py:smoke", f"--workdir={workdir}",
          f"--config.data.data_dir={tfds_dir}", "--config.train.learning_rate=1e6",
          "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=50",
          "--config.train.steps_per_call=1", "--config.train.max_consecutive_skips=3"])
  assert exit_info.value.code == 2
  errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
  assert len(errors) == 1 and errors[0].startswith("jaxvae: error: the last 4 updates"), errors
  states = _states(workdir)
  last = max(states)
  assert f"max_consecutive_skips=3; the last good checkpoint (step {last}) is intact" in errors[0]
  assert int(states[last].consecutive_skips) == 3 and int(states[last].skipped_updates) == 3
  first_skip = last - 2  # The updates of steps last-2, last-1 and last were skipped.
  for step in range(first_skip, last + 1):
    assert _same(states[step], states[first_skip - 1])
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(states[last].params))
