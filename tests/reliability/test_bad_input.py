"""The bad-input catalogue: every malformed config, dataset, workdir or flag ends in one line
`jaxvae: error: ...` naming the problem, exit code 2, no traceback, and no change to existing files.
"""

import os

import numpy as np
import pytest

from jaxvae.cli import main

SMOKE = "--config=configs/digits_vae.py:smoke"


def _snapshot(directory):
  return {os.path.join(root, name): (os.path.getsize(os.path.join(root, name)),
                                     os.path.getmtime(os.path.join(root, name)))
          for root, _, names in os.walk(directory) for name in names}


def _expect_error(capsys, args, message):
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", *args])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  errors = [line for line in err.splitlines() if line.startswith("jaxvae: error: ")]
  assert len(errors) == 1 and "Traceback" not in err, err
  assert message in errors[0], errors[0]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
  """Malformed data files, made once."""
  d = tmp_path_factory.mktemp("bad")
  ok = np.zeros((4, 8, 8), np.uint8)
  files = {
      "garbage.npz": None,
      "no_test.npz": {"train": ok},
      "labels.npz": {"train": ok, "test": ok, "train_labels": np.arange(3)},
      "int64.npz": {"train": ok.astype(np.int64), "test": ok},
      "nan.npz": {"train": np.full((4, 8, 8), np.nan, np.float32), "test": ok},
      "range.npz": {"train": np.full((4, 8, 8), 1.5, np.float32), "test": ok},
      "empty.npz": {"train": np.zeros((0, 8, 8), np.uint8), "test": ok},
      "five_d.npz": {"train": np.zeros((2, 2, 2, 2, 2), np.uint8), "test": ok},
      "zero_bytes.npz": b"",
      "off_grid.npz": {"train": np.full((4, 8, 8), 0.3, np.float32), "test": ok},
  }
  for name, arrays in files.items():
    if arrays is None:
      (d / name).write_bytes(b"this is not an npz file")
    elif isinstance(arrays, bytes):
      (d / name).write_bytes(arrays)
    else:
      np.savez(d / name, **arrays)
  (d / "folder" / "train").mkdir(parents=True)
  (d / "folder" / "train" / "broken.png").write_bytes(b"\x89PNG but not really")
  (d / "syntax_error.py").write_text("def get_config(:\n")
  (d / "extra_key.py").write_text(
      "from jaxvae.config import get_config as base\n\n"
      "def get_config():\n  c = base()\n  c.model.depth = 3\n  return c\n")
  return d


CONFIG_CASES = [
    (["--config.model.latent=3"], "unknown config key"),
    (["--config.nonsense=1"], "unknown config key"),
    (["--config.model.latent_dim=abc"], "latent_dim"),
    (["--config.train.learning_rate=fast"], "learning_rate"),
    (["--config.model.latent_dim=0"], "'model.latent_dim' must be positive"),
    (["--config.train.batch_size=-4"], "'train.batch_size' must be positive"),
    (["--config.train.batch_size=12"], "divisible by the number of devices (8)"),
    (["--config.train.num_groups=2"], "above 1 only with train.objective 'miwae' or 'piwae'"),
    (["--config.train.objective=maximum"], "choose one of elbo, iwae"),
    (["--config.data.source=s3"], "'data.source' is 's3'"),
    (["--config.data.binarize=sometimes"], "'data.binarize' is 'sometimes'"),
    (["--config.train.num_samples=0"], "'train.num_samples' must be positive"),
    (["--config.eval.num_samples=0"], "'eval.num_samples' must be positive"),
    (["--config.model.hidden_sizes=()"], "'model.hidden_sizes' must be a non-empty tuple"),
    (["--config.data.dequantize=True"], "binarized data are {0, 1}"),
    (["--config.data.num_bits=9"], "'data.num_bits' must be 0 (keep) or 1..8"),
    (["--config.data.crop=-1"], "'data.crop' must be >= 0"),
    (["--config=configs/digits_hvae.py:smoke", "--config.model.latent_dims=(8,)"],
     "needs at least two stochastic layers"),
    (["--config.model.prior=vamp", "--config.model.posterior=iaf"],
     "use model.posterior diag, full_cov or mixture with it"),
    # Another kind's section comes from its config file (or jaxvae.config.model_config).
    (["--config.model.kind=toy"], "config.model = jaxvae.config.model_config(KIND)"),
    (["--config=configs/toy.py:smoke", "--config.data.source=embedded"], "set data.source='toy'"),
    (["--config.train.objective=exact_elbo"], "capability EXACT_ELBO"),
    (["--config.model.likelihood=discretized_logistic", "--config.data.binarize=none",
      "--config.data.num_bits=5", "--config.model.num_bits=8"],
     "the likelihood's pixel levels must be the data's"),
    (["--config.train.max_consecutive_skips=-1"], "'train.max_consecutive_skips' must be >= 0"),
    (["--config.train.num_devices=16"], "only 8 devices exist"),
    (["--config=configs/nope.py"], "config file 'configs/nope.py' not found"),
    (["--config=configs/digits_vae.py:huge"], "unknown config variant 'huge'"),
    (["--bogus=1"], "Unknown command line flag 'bogus'"),
]


@pytest.mark.parametrize("flags, message", CONFIG_CASES, ids=lambda v: str(v)[:40])
def test_bad_config(flags, message, tmp_path, capsys, tfds_dir):
  config_file = [f for f in flags if f.startswith("--config=")] or [SMOKE]
  args = ["train", *config_file, f"--workdir={tmp_path / 'run'}",
          f"--config.data.data_dir={tfds_dir}"]
  _expect_error(capsys, args + [f for f in flags if not f.startswith("--config=")], message)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config_file, message", [
    ("syntax_error.py", "cannot load --config"),
    ("extra_key.py", "unknown config key 'model.depth'"),
])
def test_bad_config_files(config_file, message, bad_files, tmp_path, capsys):
  _expect_error(capsys, ["train", f"--workdir={tmp_path / 'run'}",
                         f"--config={bad_files / config_file}"], message)


DATA_CASES = [
    ("npz", "/nonexistent.npz", "is not a file"),
    ("npz", "garbage.npz", "is not a readable .npz file"),
    ("npz", "no_test.npz", "has no array 'test'"),
    ("npz", "labels.npz", "train_labels has shape (3,); expected (4,)"),
    ("npz", "int64.npz", "has dtype int64; use uint8 or float in [0, 1]"),
    ("npz", "nan.npz", "outside [0, 1] (or NaN)"),
    ("npz", "range.npz", "outside [0, 1] (or NaN)"),
    ("npz", "empty.npz", "expected a non-empty"),
    ("npz", "five_d.npz", "expected a non-empty"),
    ("npz", "zero_bytes.npz", "is not a readable .npz file"),
    ("folder", "folder", "cannot read image"),
    ("folder", "/nonexistent_dir", "has no folder 'train'"),
]


@pytest.mark.parametrize("source, path, message", DATA_CASES, ids=lambda v: str(v)[:30])
def test_bad_data(source, path, message, bad_files, tmp_path, capsys):
  path = path if path.startswith("/") else str(bad_files / path)
  _expect_error(capsys, ["train", SMOKE, f"--workdir={tmp_path / 'run'}",
                         f"--config.data.source={source}", f"--config.data.path={path}",
                         "--config.data.binarize=none"], message)
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_data_off_the_likelihoods_levels(bad_files, tmp_path, capsys):
  _expect_error(capsys, ["train", SMOKE, f"--workdir={tmp_path / 'run'}",
                         "--config.data.source=npz", f"--config.data.path={bad_files}/off_grid.npz",
                         "--config.data.binarize=none", "--config.model.likelihood=categorical256"],
                "off_grid.npz:train holds values off the grid k / 255")
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, message", [
    (["--config.data.source=tfds", "--config.data.name=no_such_dataset"], "not found"),
    (["--config.data.source=tfds", "--config.data.name=mnist", "--config.data.download=False"],
     "is not prepared"),
    (["--config.data.name=letters"], "the only embedded dataset is 'digits'"),
    (["--config.data.eval_split=validation"], "split 'validation'"),
])
def test_missing_datasets(flags, message, tmp_path, capsys, tfds_dir):
  _expect_error(capsys, ["train", SMOKE, f"--workdir={tmp_path / 'run'}",
                         f"--config.data.data_dir={tfds_dir}", *flags], message)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tfds_dir):
  workdir = str(tmp_path_factory.mktemp("trained"))
  main(["jaxvae", "train", f"--workdir={workdir}", SMOKE, f"--config.data.data_dir={tfds_dir}",
        "--config.train.num_steps=10", "--config.train.checkpoint_every=10"])
  return workdir


def test_workdir_of_another_architecture(trained, capsys, tfds_dir):
  before = _snapshot(trained)
  _expect_error(capsys, ["train", SMOKE, f"--workdir={trained}", f"--config.data.data_dir={tfds_dir}",
                         "--config.model.hidden_sizes=(7,)"], "holds checkpoints of a different run")
  assert _snapshot(trained) == before


def test_checkpoint_of_another_architecture_without_its_config(trained, tmp_path, capsys, tfds_dir):
  import shutil

  workdir = tmp_path / "copy"
  shutil.copytree(trained, workdir)
  os.remove(workdir / "config.json")
  before = _snapshot(workdir / "checkpoints")
  _expect_error(capsys, ["train", SMOKE, f"--workdir={workdir}", f"--config.data.data_dir={tfds_dir}",
                         "--config.model.latent_dim=3"], "does not fit this model")
  assert _snapshot(workdir / "checkpoints") == before


@pytest.mark.parametrize("make, message", [
    ("file", "is a file; give a directory"),
    ("checkpoints_file", "is a file, where the run keeps its checkpoint directory"),
    ("unwritable", "cannot write to --workdir"),
    ("read_only", "cannot write to --workdir"),
])
def test_bad_workdirs(make, message, tmp_path, capsys, tfds_dir):
  workdir = {"file": tmp_path / "a_file", "checkpoints_file": tmp_path / "run",
             "unwritable": "/proc/jaxvae_cannot_be_here",  # not creatable, even by root
             "read_only": "/proc"}[make]  # an existing directory no one can write to
  if make == "file":
    workdir.write_text("keep")
  elif make == "checkpoints_file":
    workdir.mkdir()
    (workdir / "checkpoints").write_text("keep")
  before = _snapshot(tmp_path)
  _expect_error(capsys, ["train", SMOKE, f"--workdir={workdir}",
                         f"--config.data.data_dir={tfds_dir}"], message)
  assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "usage: jaxvae {train|eval|sample"),
    (["train", SMOKE], "needs --workdir"),
    (["eval", "--workdir=/nonexistent_run"], "cannot read the run's config"),
    (["eval", "WORKDIR", "--num_samples=-5"], "--num_samples must be positive"),
    (["eval", "WORKDIR", "--step=999"], "no checkpoint for step 999"),
    (["eval", "WORKDIR", "--split=nope"], "split 'nope'"),
    (["sample", "WORKDIR", "--num=0"], "--num must be positive"),
    (["sample", "WORKDIR", "--nmu=3"], "Unknown command line flag 'nmu'"),
    (["train", SMOKE, "WORKDIR", "--coordinator_address=localhost:1234"], "go together"),
    (["train", SMOKE, "WORKDIR", "--coordinator_address=localhost:1234", "--num_processes=2",
      "--process_id=2"], "--process_id=2 must be in [0, --num_processes=2)"),
    (["train", SMOKE, "WORKDIR", "--heartbeat_timeout=0"], "heartbeat_timeout"),
    (["eval", "WORKDIR", "--follow", "--timeout=-1"], "--timeout must be positive"),
])
def test_bad_cli_flags(args, message, trained, capsys):
  args = [f"--workdir={trained}" if a == "WORKDIR" else a for a in args]
  before = _snapshot(trained)
  _expect_error(capsys, args, message)
  assert _snapshot(trained) == before
