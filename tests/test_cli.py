"""The user-facing contract: the README's commands, the workdir layout, and clear errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxvae.cli import COMMANDS, main

SMOKE = "--config=configs/digits_vae.py:smoke"


def _run(*args):
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", *args])
  return exit_info.value.code


def _snapshot(directory):
  """Every file under `directory` with its size and modification time."""
  return {os.path.join(root, name): (os.path.getsize(os.path.join(root, name)),
                                     os.path.getmtime(os.path.join(root, name)))
          for root, _, names in os.walk(directory) for name in names}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tfds_dir):
  workdir = str(tmp_path_factory.mktemp("run"))
  main(["jaxvae", "train", f"--workdir={workdir}", SMOKE, f"--config.data.data_dir={tfds_dir}"])
  return workdir


def test_train_writes_the_workdir(trained, capsys):
  assert sorted(os.listdir(os.path.join(trained, "checkpoints"))) == ["10", "20"]
  with open(os.path.join(trained, "config.json")) as f:
    assert json.load(f)["train"]["num_steps"] == 20
  with open(os.path.join(trained, "metrics.jsonl")) as f:
    metrics = [json.loads(line) for line in f]
  assert [m["step"] for m in metrics] == [5, 10, 15, 20]
  for key in ("loss", "elbo", "kl", "learning_rate", "examples_per_sec"):
    assert all(np.isfinite(m[key]) for m in metrics), key
  assert os.listdir(os.path.join(trained, "tensorboard", "train"))
  assert os.path.exists(os.path.join(trained, "images", "samples_00000020.png"))


def test_eval_appends_one_line_per_checkpoint_split_and_k(trained, capsys):
  main(["jaxvae", "eval", f"--workdir={trained}", "--num_samples=7"])
  main(["jaxvae", "eval", f"--workdir={trained}", "--num_samples=7"])  # already recorded
  main(["jaxvae", "eval", f"--workdir={trained}", "--num_samples=3", "--split=train", "--step=10"])
  assert "log p(x) =" in capsys.readouterr().out
  with open(os.path.join(trained, "eval", "log_likelihood.jsonl")) as f:
    records = [json.loads(line) for line in f]
  keys = [(r["step"], r["split"], r["num_samples"]) for r in records]
  assert keys == [(20, "test", 10), (20, "test", 7), (10, "train", 3)]
  test_k7 = records[1]
  assert test_k7["num_examples"] == 300 and records[2]["num_examples"] == 1497
  assert test_k7["elbo"] <= test_k7["log_px"] < 0
  np.testing.assert_allclose(test_k7["bits_per_dim"], -test_k7["log_px"] / (64 * np.log(2)))
  assert test_k7["log_px_stderr"] > 0


def test_sample_writes_a_png(trained, tmp_path):
  out = str(tmp_path / "samples.png")
  main(["jaxvae", "sample", f"--workdir={trained}", "--num=16", f"--out={out}"])
  assert Image.open(out).size == (4 * 37, 4 * 37)  # 4x4 grid of 8x8 images, 1px borders, x4


def test_train_again_resumes_instead_of_restarting(trained, capsys, tfds_dir):
  before = _snapshot(os.path.join(trained, "checkpoints"))
  main(["jaxvae", "train", f"--workdir={trained}", SMOKE, f"--config.data.data_dir={tfds_dir}"])
  assert "Already trained to step 20" in capsys.readouterr().out
  assert _snapshot(os.path.join(trained, "checkpoints")) == before


@pytest.mark.parametrize("flags, message", [
    (["--config.model.latent=3"], "unknown config key"),
    (["--config.model.latent_dim=abc"], "latent_dim"),
    (["--config.model.latent_dim=0"], "'model.latent_dim' must be positive"),
    (["--config.train.objective=maximum"], "choose one of elbo, iwae"),
    (["--config.train.batch_size=12"], "divisible by the number of devices (8)"),
    (["--config=configs/nope.py"], "config file 'configs/nope.py' not found"),
    (["--config.data.source=tfds", "--config.data.name=mnist", "--config.data.download=False"],
     "'mnist' is not prepared"),
    (["--config.data.source=npz", "--config.data.path=/nonexistent.npz"], "is not a file"),
    (["--bogus=1"], "Unknown command line flag 'bogus'"),
])
def test_bad_train_input_is_one_clear_line(flags, message, tmp_path, capsys, tfds_dir):
  workdir = str(tmp_path / "run")
  assert _run("train", f"--workdir={workdir}", SMOKE, f"--config.data.data_dir={tfds_dir}",
              *flags) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("jaxvae: error: ") and message in err[-1], err
  assert "Traceback" not in "\n".join(err)
  assert not os.path.exists(os.path.join(workdir, "checkpoints"))


def test_a_different_model_in_the_workdir_is_refused_and_nothing_changes(trained, capsys, tfds_dir):
  before = _snapshot(trained)
  assert _run("train", f"--workdir={trained}", SMOKE, f"--config.data.data_dir={tfds_dir}",
              "--config.model.latent_dim=3") == 2
  assert "holds checkpoints of a different run: model.latent_dim was 8, now 3" in (
      capsys.readouterr().err)
  assert _snapshot(trained) == before


@pytest.mark.parametrize("args, message", [
    (["eval", "--num_samples=0"], "--num_samples must be positive"),
    (["eval", "--step=999"], "no checkpoint for step 999"),
    (["sample", "--num=0"], "--num must be positive"),
    (["eval", "--split=valid"], "split 'valid'"),  # Blames --split too, not only data.eval_split.
    (["eval", "--split=valid"], "data.eval_split or jaxvae eval --split)"),
    (["frobnicate"], "usage: jaxvae {train|eval|sample|plot}"),
])
def test_bad_eval_and_sample_input(args, message, trained, capsys):
  assert _run(*args[:1], f"--workdir={trained}", *args[1:]) == 2
  assert message in capsys.readouterr().err


def test_workdir_problems(tmp_path, capsys, tfds_dir):
  a_file = tmp_path / "file"
  a_file.write_text("keep me")
  assert _run("train", f"--workdir={a_file}", SMOKE, f"--config.data.data_dir={tfds_dir}") == 2
  assert "is a file" in capsys.readouterr().err
  assert a_file.read_text() == "keep me"
  assert _run("eval", f"--workdir={tmp_path / 'empty'}") == 2
  assert "cannot read the run's config" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_lists_each_command_and_exits_0(flag, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", flag])
  assert exit_info.value.code == 0
  out, err = capsys.readouterr()
  assert err == "" and out.startswith("usage: jaxvae COMMAND")
  commands = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
  assert commands == list(COMMANDS)
