"""Damaged checkpoints: a truncated, half-written or emptied latest step is detected, reported in
one warning line and set aside as `<step>.damaged` (never deleted); the trainer resumes from the
previous good step and the eval job skips the damaged one."""

import glob
import os
import shutil

import jax
import numpy as np
import pytest

from jaxvae.cli import main
from jaxvae.eval import follow
from jaxvae.eval import job
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.checkpoint import UnreadableCheckpoint
from kill_harness import restore_target

SMOKE = "--config=configs/digits_vae.py:smoke"


def _truncate(step_dir):
  """Every array data file of the parameters cut to half its length (a copy cut short)."""
  for path in glob.glob(os.path.join(step_dir, "params", "**", "d", "*"), recursive=True):
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


def _delete_data(step_dir):
  """The optimizer state's array data files deleted (the directory tree stays)."""
  for path in glob.glob(os.path.join(step_dir, "opt_state", "**", "d", "*"), recursive=True):
    os.remove(path)


def _half_written(step_dir):
  """One item of the step missing, as if the save had stopped before writing it."""
  shutil.rmtree(os.path.join(step_dir, "params"))


def _emptied(step_dir):
  """Every file of the step gone; only its directory is left."""
  for path in glob.glob(os.path.join(step_dir, "*")):
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


DAMAGES = {"truncated": _truncate, "deleted_files": _delete_data, "half_written": _half_written,
           "emptied": _emptied}


def _files(directory):
  return {os.path.relpath(os.path.join(root, name), directory):
          open(os.path.join(root, name), "rb").read()
          for root, _, names in os.walk(directory) for name in names}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tfds_dir):
  """A finished smoke run with every checkpoint kept: steps 5, 10, 15, 20."""
  workdir = str(tmp_path_factory.mktemp("run"))
  main(["jaxvae", "train", SMOKE, f"--workdir={workdir}", f"--config.data.data_dir={tfds_dir}",
        "--config.train.checkpoint_every=5", "--config.train.keep_checkpoints=10"])
  return workdir


def _damaged_copy(run_dir, tmp_path, damage, step=20):
  workdir = str(tmp_path / "copy")
  shutil.copytree(run_dir, workdir)
  DAMAGES[damage](os.path.join(workdir, "checkpoints", str(step)))
  return workdir


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_previous_good_step_is_restored_and_the_damaged_one_set_aside(
    damage, run_dir, tmp_path, capsys):
  workdir = _damaged_copy(run_dir, tmp_path, damage)
  damaged_files = _files(os.path.join(workdir, "checkpoints", "20"))
  target = restore_target(run_dir)
  checkpoints = Checkpoints(workdir)
  state = checkpoints.restore_latest(target)
  checkpoints.close()
  expected = Checkpoints(run_dir, read_only=True).restore(15, target)
  jax.tree.map(np.testing.assert_array_equal, state, expected)
  warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1, warnings
  assert warnings[0].startswith("warning: checkpoint step 20 is damaged (")
  assert warnings[0].endswith(f"moved it to {workdir}/checkpoints/20.damaged and resumed from "
                              f"step 15")
  assert _files(os.path.join(workdir, "checkpoints", "20.damaged")) == damaged_files
  assert Checkpoints(workdir, read_only=True).all_steps() == [5, 10, 15]


def test_training_resumes_past_a_damaged_step_to_the_uninterrupted_parameters(
    run_dir, tmp_path, tfds_dir, capsys):
  """The trainer re-trains the damaged step's updates and saves the step anew: the same bits as
  the undamaged run; a second damage of the same step is set aside next to the first."""
  workdir = _damaged_copy(run_dir, tmp_path, "truncated")
  args = ["jaxvae", "train", SMOKE, f"--workdir={workdir}", f"--config.data.data_dir={tfds_dir}",
          "--config.train.checkpoint_every=5", "--config.train.keep_checkpoints=10"]
  main(args)
  assert "Resuming from step 15" in capsys.readouterr().out
  target = restore_target(run_dir)
  jax.tree.map(np.testing.assert_array_equal,
               Checkpoints(workdir, read_only=True).restore(20, target),
               Checkpoints(run_dir, read_only=True).restore(20, target))
  _emptied(os.path.join(workdir, "checkpoints", "20"))
  Checkpoints(workdir).restore_latest(target)
  assert "moved it to " + os.path.join(workdir, "checkpoints", "20.damaged.2") in (
      capsys.readouterr().err)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [
      "10", "15", "20.damaged", "20.damaged.2", "5"]


def test_when_no_step_restores_nothing_is_moved_and_the_error_says_so(run_dir, tmp_path):
  workdir = _damaged_copy(run_dir, tmp_path, "emptied")
  for step in (5, 10, 15):
    _emptied(os.path.join(workdir, "checkpoints", str(step)))
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  with pytest.raises(UnreadableCheckpoint, match=r"checkpoints/20 cannot be restored \(.*\): it "
                                                 r"is damaged, or it does not fit this model"):
    Checkpoints(workdir).restore_latest(restore_target(run_dir))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before


def test_the_eval_job_skips_a_damaged_step_with_a_warning(run_dir, tmp_path, monkeypatch, capsys):
  workdir = _damaged_copy(run_dir, tmp_path, "truncated", step=10)
  shutil.rmtree(os.path.join(workdir, "eval"))
  monkeypatch.setattr(job.time, "sleep", lambda seconds: None)
  assert follow(workdir, num_samples=(1,), poll_seconds=0.01, timeout_seconds=60) == [5, 15, 20]
  warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1 and warnings[0].startswith(
      "warning: step 10: skipped, its checkpoint is damaged ("), warnings
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "10"))  # Readers never move files.
