"""A real 2-process job (2 forced CPU devices each, joined over localhost), started through the
local launcher (launch/local.py), trains to the parameters of a 1-process 4-device run of the same
config, through a rollback (decided alike on both processes)."""

import os
import sys

import jax
import numpy as np
import pytest

from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.runtime import distributed
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.runtime.trained import abstract_variables
from jaxvae.train import train_and_evaluate
from jaxvae.runtime import mesh as mesh_lib

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, _ROOT)  # launch/ is a directory of scripts next to the package.

from launch import local as local_launcher  # noqa: E402


def _final_params(workdir, config):
  model = build_model(config.model, (8, 8, 1))
  reader = Checkpoints(workdir, read_only=True)
  return reader.restore_variables(reader.resolve_step(), abstract_variables(
      model, (8, 8, 1), mesh_lib.replicated(mesh_lib.make_mesh())))["params"]


def test_two_processes_of_two_devices_equal_one_process_of_four(tmp_path, smoke_config, capsys):
  overrides = {"num_steps": 10, "checkpoint_every": 10, "steps_per_call": 5,
               # Diverges after step 1: a rollback at step 5, then 10 steps at 8 / 8192.
               "learning_rate": 8.0, "max_consecutive_skips": 3, "max_rollbacks": 1,
               "rollback_lr_factor": 2.0 ** -13}
  for key, value in overrides.items():
    smoke_config.train[key] = value
  smoke_config.train.num_devices = 4
  train_and_evaluate(smoke_config, str(tmp_path / "one"))  # Also prepares the data for both.

  args = ["train", f"--workdir={tmp_path / 'two'}",
          "--config=" + os.path.join(_ROOT, "jaxvae", "config.py") + ":smoke",
          f"--config.data.data_dir={smoke_config.data.data_dir}"]
  args += [f"--config.train.{key}={value}" for key, value in overrides.items()]
  outputs = local_launcher.run(["--num_processes=2", "--devices_per_process=2", "--timeout_s=180",
                                "--", *args])
  assert "step 10:" in outputs[0] and "Rollback 1/1 at step 5:" in outputs[0], outputs[0]
  printed = capsys.readouterr().out.splitlines()  # The launcher streams each process's lines.
  assert "[0] step 10:" in "\n".join(printed) and any(l.startswith("[1] ") for l in printed)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               _final_params(str(tmp_path / "two"), smoke_config),
               _final_params(str(tmp_path / "one"), smoke_config))


def test_local_commands_and_partial_coordinator_flags():
  processes = distributed.local_processes(["train", "--workdir=w"], 2, 3, port=1234)
  assert [p.argv[-1] for p in processes] == ["--process_id=0", "--process_id=1"]
  assert all("--coordinator_address=localhost:1234" in p.argv for p in processes)
  assert dict(processes[0].env)["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"
  with pytest.raises(UserError, match="go together"):
    distributed.initialize("localhost:1234", None, None)


@pytest.mark.parametrize("devices, expected", [
    ({}, False),
    ({"0000:00:04.0": ("0x1ae0", "0x0042")}, False),  # Google's NIC (gVNIC) is no TPU.
    ({"0000:00:05.0": ("0x10de", "0x2330")}, False),  # Another vendor's accelerator.
    ({"0000:00:04.0": ("0x1ae0", "0x0042"), "0000:00:05.0": ("0x1ae0", "0x0063")}, True),  # v5e.
])
def test_cloud_tpu_vm_detection(tmp_path, monkeypatch, devices, expected):
  """A TPU VM's shell need not have TPU variables: its chips on the PCI bus (faked here) count."""
  import glob

  for name, (vendor, device) in devices.items():
    (tmp_path / name).mkdir()
    (tmp_path / name / "vendor").write_text(vendor + "\n")
    (tmp_path / name / "device").write_text(device + "\n")
  real_glob = glob.glob
  monkeypatch.setattr(glob, "glob", lambda pattern: real_glob(
      pattern.replace("/sys/bus/pci/devices", str(tmp_path))))
  assert distributed.on_cloud_tpu({}) == expected
  assert distributed.on_cloud_tpu({"TPU_WORKER_ID": "0"})
