"""The evaluation job (`jaxvae eval --follow`): each checkpoint once, a ledger, a racing trainer."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from jaxvae import data as data_lib
from jaxvae.errors import UserError
from jaxvae.eval import follow
from jaxvae.eval import log_likelihood as ll

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ledger(workdir):
  with open(os.path.join(workdir, "eval", "log_likelihood.jsonl")) as f:
    return [json.loads(line) for line in f]


def _steps_on_disk(workdir):
  return sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tfds_dir):
  """A finished smoke run with checkpoints at steps 5, 10, 15, 20."""
  from jaxvae.cli import main

  workdir = str(tmp_path_factory.mktemp("run"))
  main(["jaxvae", "train", f"--workdir={workdir}", "--config=configs/digits_vae.py:smoke",
        f"--config.data.data_dir={tfds_dir}", "--config.train.checkpoint_every=5",
        "--config.train.keep_checkpoints=10"])
  return workdir


def test_follow_skips_vanished_and_half_written_steps_and_a_restart_repeats_nothing(
    run_dir, monkeypatch, capsys):
  workdir = str(run_dir)
  assert _steps_on_disk(workdir) == [5, 10, 15, 20]
  # A save in progress: Orbax's temporary directory, not yet renamed to its step.
  os.makedirs(os.path.join(workdir, "checkpoints", "25.orbax-checkpoint-tmp-1700000000"))
  restored = []
  original = ll.Evaluator.restore

  def restore(self, checkpoints, step):
    restored.append(step)
    if step == 10:  # The trainer's keep-last-N deletes it while it is being restored.
      shutil.rmtree(os.path.join(workdir, "checkpoints", "10"))
    return original(self, checkpoints, step)

  monkeypatch.setattr(ll.Evaluator, "restore", restore)
  assert follow(workdir, num_samples=(1, 3), poll_seconds=0.01, timeout_seconds=60) == [5, 15, 20]
  assert restored == [5, 10, 15, 20]
  assert "step 10: skipped, its checkpoint was deleted" in capsys.readouterr().out
  ledger = [(r["step"], r["num_samples"]) for r in _ledger(workdir)
            if r["num_samples"] < 10 and r["split"] == "test"]
  assert ledger == [(5, 1), (5, 3), (15, 1), (15, 3), (20, 1), (20, 3)]
  with open(os.path.join(workdir, "eval", "diagnostics.jsonl")) as f:
    steps = [r["step"] for r in map(json.loads, f) if r["split"] == "test"]
  assert steps == [20, 5, 15]  # 20: the trainer's own final evaluation

  assert os.listdir(os.path.join(workdir, "tensorboard", "eval"))  # The scalars for TensorBoard.

  before = _ledger(workdir)
  restored.clear()
  assert follow(workdir, num_samples=(1, 3), poll_seconds=0.01, timeout_seconds=60) == [5, 15, 20]
  assert restored == [] and _ledger(workdir) == before  # The ledger answers; nothing is redone.


def test_the_timeout_is_kept_to_within_a_poll_even_when_the_poll_is_longer(tmp_path):
  slept = []
  start = time.monotonic()
  with pytest.raises(UserError, match="gave up after 0.3 s"):
    follow(str(tmp_path / "not_yet"), poll_seconds=30, timeout_seconds=0.3,
           sleep=lambda s: (slept.append(s), time.sleep(s)))
  assert time.monotonic() - start < 0.3 + 2 and max(slept) <= 0.3


def test_follow_gives_up_after_the_timeout(tmp_path):
  start = time.monotonic()
  with pytest.raises(UserError, match="gave up after 0.2 s without a config.json"):
    follow(str(tmp_path / "not_yet"), poll_seconds=0.05, timeout_seconds=0.2)
  assert time.monotonic() - start < 10
  with pytest.raises(UserError, match="--poll_seconds must be positive"):
    follow(str(tmp_path), poll_seconds=0)


def test_follow_evaluates_a_running_trainers_checkpoints_once(tmp_path, tfds_dir, smoke_config):
  """A trainer and the job as two processes; the trainer deletes all but its last 2 checkpoints."""
  data_lib.load_split(smoke_config.data, "test")  # Prepare the data before two processes race.
  workdir = str(tmp_path / "run")
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  cli = [sys.executable, "-m", "jaxvae.cli"]
  job = subprocess.Popen(cli + ["eval", f"--workdir={workdir}", "--follow", "--num_samples=2,4",
                                "--poll_seconds=0.1", "--timeout=120"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
  trainer = subprocess.run(
      cli + ["train", f"--workdir={workdir}", "--config=configs/digits_vae.py:smoke",
             f"--config.data.data_dir={tfds_dir}", "--config.train.num_steps=40",
             "--config.train.checkpoint_every=4", "--config.train.keep_checkpoints=2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert trainer.returncode == 0, trainer.stderr[-2000:]
  out, _ = job.communicate(timeout=300)
  assert job.returncode == 0, out[-2000:]
  records = [r for r in _ledger(workdir) if r["num_samples"] in (2, 4)]
  keys = [(r["step"], r["num_samples"]) for r in records]
  assert len(keys) == len(set(keys))  # Each (checkpoint, K) exactly once.
  evaluated = sorted({r["step"] for r in records})
  assert evaluated[-1] == 40 and all(s % 4 == 0 for s in evaluated)
  assert set(_steps_on_disk(workdir)) <= set(evaluated)  # Every surviving checkpoint.
  assert all({(s, 2), (s, 4)} <= set(keys) for s in evaluated)
  assert "Traceback" not in out, out[-4000:]


def test_cli_reports_several_k_from_one_pass_and_rejects_bad_flags(run_dir, capsys):
  from jaxvae.cli import main

  workdir = str(run_dir)
  main(["jaxvae", "eval", f"--workdir={workdir}", "--num_samples=6,2", "--step=15",
        "--split=train"])
  records = [r for r in _ledger(workdir) if r["split"] == "train"]
  assert [(r["step"], r["num_samples"]) for r in records] == [(15, 2), (15, 6)]
  assert records[0]["seconds"] == records[1]["seconds"]  # One pass.
  assert records[0]["elbo"] <= records[0]["log_px"] <= records[1]["log_px"] + 0.5
  for args, message in (
      (["--num_samples=1,ten"], "--num_samples must be comma-separated integers"),
      (["--num_samples=0,5"], "--num_samples must be positive"),
      (["--follow", "--step=5"], "--step and --follow exclude each other"),
      (["--refine_steps=-1"], "--refine_steps must be >= 0"),
      (["--follow", "--poll_seconds=0"], "--poll_seconds must be positive"),
  ):
    with pytest.raises(SystemExit) as exit_info:
      main(["jaxvae", "eval", f"--workdir={workdir}", *args])
    assert exit_info.value.code == 2, args
    assert message in capsys.readouterr().err, args


def test_follow_keeps_the_final_step_while_config_json_is_being_rewritten(run_dir, monkeypatch):
  """A restarted trainer rewrites config.json; a half-written one must not stop the job."""
  from jaxvae.eval import job

  workdir = str(run_dir)
  config_path = os.path.join(workdir, "config.json")
  with open(config_path) as f:
    saved = f.read()
  try:
    with open(config_path, "w") as f:
      f.write(saved[:10])  # Truncated mid-write.
    assert job._final_step(config_path, 20) == 20
  finally:
    with open(config_path, "w") as f:
      f.write(saved)
  assert job._final_step(config_path, 7) == 20


def test_two_process_job_agrees_with_one_process(run_dir, tmp_path):
  """The follow job as 2 processes x 2 devices gives the single-process records."""
  from test_evaluator import run_two_processes

  copies = [str(tmp_path / name) for name in ("one", "two")]
  for copy in copies:
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("eval", "tensorboard"))
  steps = _steps_on_disk(copies[0])  # Another test may have deleted step 10.
  assert follow(copies[0], num_samples=(5,), poll_seconds=0.05, timeout_seconds=60) == steps
  outputs = run_two_processes("follow", copies[1])
  assert f"steps {steps}" in outputs[0] and f"steps {steps}" in outputs[1]
  one, two = _ledger(copies[0]), _ledger(copies[1])
  assert [(r["step"], r["num_samples"]) for r in two] == [(s, 5) for s in steps]
  for a, b in zip(one, two, strict=True):
    for key in ("log_px", "elbo", "log_px_stderr", "num_examples"):
      assert abs(a[key] - b[key]) < 1e-5, (a["step"], key)


def test_listing_survives_a_step_deleted_while_orbax_reads_it(run_dir, monkeypatch):
  """Orbax stats each step while it lists them; a deletion in between raises, and the job looks
  again instead of crashing."""
  from jaxvae.eval import job

  real, calls = job.checkpoint_lib.Checkpoints, []

  def flaky(*args, **kwargs):
    calls.append(1)
    if len(calls) < 3:
      raise FileNotFoundError("checkpoints/10/_CHECKPOINT_METADATA")
    return real(*args, **kwargs)

  monkeypatch.setattr(job.checkpoint_lib, "Checkpoints", flaky)
  assert job._finalized_steps(str(run_dir)) == _steps_on_disk(str(run_dir))
  assert len(calls) == 3


def test_a_read_failing_mid_deletion_is_a_skip_not_a_crash(run_dir, monkeypatch, capsys):
  """The trainer removes a step's files before its directory, so the restore fails while the step
  is still listed; the job looks again, sees it gone, and skips it. A step that stays is an error."""
  import threading

  from jaxvae.eval import job

  workdir = str(run_dir)
  victim = _steps_on_disk(workdir)[0]

  def restore(self, checkpoints, step):
    threading.Timer(0.3, shutil.rmtree, [os.path.join(workdir, "checkpoints", str(step))]).start()
    raise ValueError("FAILED_PRECONDITION: Truncated Zstd-compressed stream")

  monkeypatch.setattr(ll.Evaluator, "restore", restore)
  evaluator = ll.Evaluator(_config(workdir), None, 2)
  assert not job._evaluate_if_present(evaluator, workdir, victim, verbose=True)
  assert f"step {victim}: skipped" in capsys.readouterr().out

  monkeypatch.setattr(ll.Evaluator, "restore", lambda self, c, s: (_ for _ in ()).throw(
      ValueError("a broken checkpoint")))
  monkeypatch.setattr(job.time, "sleep", lambda s: None)
  with pytest.raises(ValueError, match="a broken checkpoint"):
    job._evaluate_if_present(evaluator, workdir, _steps_on_disk(workdir)[-1], verbose=True)


def _config(workdir):
  from jaxvae.config import load_config

  return load_config(os.path.join(workdir, "config.json"))
