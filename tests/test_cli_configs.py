"""Config files on the command line: a run's own config.json is a config file (with overrides),
the mismatch message names a command that works, a misspelled key gets the closest one, and any
error raised while a config file loads is one line."""

import json
import os

import numpy as np
import pytest

from jaxvae.cli import main

SMOKE = "--config=configs/digits_vae.py:smoke"


def _run(capsys, *args):
  """`jaxvae ARGS`: (exit code, stderr)."""
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", *args])
  return exit_info.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tfds_dir):
  workdir = str(tmp_path_factory.mktemp("run"))
  main(["jaxvae", "train", f"--workdir={workdir}", SMOKE, f"--config.data.data_dir={tfds_dir}",
        "--config.train.progress_bar=false"])
  return workdir


def test_the_mismatch_message_names_a_command_that_resumes(run_dir, capsys):
  code, err = _run(capsys, "train", f"--workdir={run_dir}", SMOKE, "--config.model.latent_dim=3")
  assert code == 2 and "model.latent_dim was 8, now 3" in err
  command = err.split("resume the run as it was: ")[1].split()
  assert command[:2] == ["jaxvae", "train"]
  main(command + ["--config.train.num_steps=30", "--config.train.progress_bar=false"])
  with open(os.path.join(run_dir, "metrics.jsonl")) as f:
    assert json.loads(f.readlines()[-1])["step"] == 30  # resumed from 20 with an override


def test_a_saved_config_with_a_misspelled_override_names_the_closest_key(run_dir, capsys):
  code, err = _run(capsys, "train", f"--workdir={run_dir}_other",
                   f"--config={os.path.join(run_dir, 'config.json')}", "--config.model.latnt_dim=3")
  assert code == 2 and "did you mean 'model.latent_dim'?" in err
  assert not os.path.exists(f"{run_dir}_other")


def test_a_misspelled_key_in_a_config_file_names_the_closest_key(tmp_path, capsys):
  path = tmp_path / "typo.py"
  path.write_text("from jaxvae import config as config_lib\n\n\ndef get_config():\n"
                  "  config = config_lib.get_config()\n  config.model.latnt_dim = 3\n"
                  "  return config\n")
  code, err = _run(capsys, "train", f"--workdir={tmp_path / 'w'}", f"--config={path}")
  assert code == 2 and len(err.strip().splitlines()) == 1
  assert "model.latnt_dim" in err and "did you mean 'model.latent_dim'?" in err


@pytest.mark.parametrize("body", ["return true", "raise RuntimeError('broken')", "return 1 / 0"])
def test_any_error_while_a_config_file_loads_is_one_line(tmp_path, capsys, body):
  path = tmp_path / "bad.py"
  path.write_text(f"def get_config():\n  {body}\n")
  code, err = _run(capsys, "train", f"--workdir={tmp_path / 'w'}", f"--config={path}")
  assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err
  assert not (tmp_path / "w").exists()


def test_a_conditional_vae_refuses_data_without_labels(tmp_path, capsys):
  images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
  np.savez(tmp_path / "nolabels.npz", train=images, test=images[:16])
  code, err = _run(capsys, "train", f"--workdir={tmp_path / 'w'}",
                   "--config=configs/digits_cvae.py:smoke", "--config.data.source=npz",
                   f"--config.data.path={tmp_path / 'nolabels.npz'}")
  assert code == 2 and "has none" in err and "labels" in err


def test_sample_writes_into_the_workdir_by_default_as_plot_does(run_dir):
  main(["jaxvae", "sample", f"--workdir={run_dir}", "--num=4"])
  main(["jaxvae", "sample", f"--workdir={run_dir}", "--kind=reconstructions", "--num=4"])
  assert os.path.getsize(os.path.join(run_dir, "samples.png")) > 0
  assert os.path.getsize(os.path.join(run_dir, "reconstructions.png")) > 0


def test_ctrl_c_before_training_is_one_line(monkeypatch, capsys):
  def interrupted(argv):
    raise KeyboardInterrupt

  monkeypatch.setattr("jaxvae.cli.run", interrupted)
  code, err = _run(capsys, "train", "--workdir=/nonexistent")
  assert code == 130 and err.strip() == "jaxvae: interrupted (Ctrl-C) before anything was saved"
