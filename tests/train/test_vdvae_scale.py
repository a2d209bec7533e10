"""The very deep VAE trains to the same parameters on 1 device, on 8 devices with its parameters,
optimizer state and EMA sharded 4 ways (FSDP), and as a real job of 2 processes on localhost."""

import importlib.util
import os
import sys

import jax
import numpy as np

from jaxvae.config import load_config
from jaxvae.models import build_model
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.trained import abstract_variables
from jaxvae.train import loop, train_and_evaluate

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, _ROOT)  # launch/ is a directory of scripts next to the package.

from launch import local as local_launcher  # noqa: E402

CONFIG = os.path.join(_ROOT, "configs", "digits_vdvae.py") + ":smoke"
STEPS = {"num_steps": 6, "log_every": 6, "checkpoint_every": 6, "ema_decay": 0.9}


def _config(tfds_dir):
  spec = importlib.util.spec_from_file_location("digits_vdvae", CONFIG.split(":")[0])
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("smoke")
  config.data.data_dir = tfds_dir
  config.eval.after_training = False
  config.train.update(STEPS)
  return config


def _final(workdir):
  """The run's EMA parameters (what evaluation reads) at its last step."""
  config = load_config(os.path.join(workdir, "config.json"))
  model = build_model(config.model, (8, 8, 1))
  reader = Checkpoints(workdir, read_only=True)
  return reader.restore_variables(reader.resolve_step(), abstract_variables(
      model, (8, 8, 1), mesh_lib.replicated(mesh_lib.make_mesh())))["params"]


def _close(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5), a, b)


def test_fsdp_on_eight_devices_and_two_processes_train_the_parameters_of_one_device(
    tmp_path, tfds_dir, monkeypatch):
  monkeypatch.setattr(loop, "_image_writer", lambda *args: (lambda variables, step: None))
  config = _config(tfds_dir)
  config.train.num_devices = 1
  train_and_evaluate(config, str(tmp_path / "one"))
  config.train.num_devices, config.train.fsdp_devices = 8, 4
  train_and_evaluate(config, str(tmp_path / "fsdp"))
  _close(_final(str(tmp_path / "one")), _final(str(tmp_path / "fsdp")))

  args = ["train", f"--workdir={tmp_path / 'two'}", f"--config={CONFIG}",
          f"--config.data.data_dir={tfds_dir}", "--config.eval.after_training=False",
          *(f"--config.train.{key}={value}" for key, value in STEPS.items())]
  outputs = local_launcher.run(["--num_processes=2", "--devices_per_process=1", "--timeout_s=300",
                                "--", *args])
  assert "step 6/6:" in outputs[0], outputs[0]
  _close(_final(str(tmp_path / "one")), _final(str(tmp_path / "two")))
