"""Checkpoints: retention, EMA for readers, restoring onto another mesh, stopping on repeated skips,
and a clean stop with a checkpoint on SIGTERM."""

import os
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from jaxvae.errors import UserError
from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.train import loop, train_and_evaluate
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.train import state as state_lib
from jaxvae.runtime.metrics import read_jsonl

_SHAPE = (8, 8, 1)


def _vae(data_shape, **section):
  """A VAE built from its config section (`model.kind='vae'` with `section`'s values)."""
  model = config_lib.model_config("vae")
  model.update(section)
  return build_model(model, data_shape)


def _state(smoke_config, ema: bool, model=None):
  model = model or _vae(data_shape=_SHAPE, latent_dim=4, hidden_sizes=(16,))
  optimizer, _ = state_lib.make_optimizer(smoke_config.train)
  return state_lib.init_state(model, optimizer, _SHAPE, jax.random.key(0), ema=ema)


def test_keeps_the_last_n_and_every_mth(tmp_path, smoke_config):
  state = _state(smoke_config, ema=False)
  checkpoints = Checkpoints(str(tmp_path), max_to_keep=2, keep_every=4)
  for step in range(1, 11):
    checkpoints.save(step, state.replace(step=np.int32(step)))
  checkpoints.wait()
  assert checkpoints.all_steps() == [4, 8, 9, 10]
  restored = checkpoints.restore(9, jax.eval_shape(lambda: state))
  assert int(restored.step) == 9
  np.testing.assert_array_equal(restored.key, state.key)


def test_saved_on_eight_devices_restores_on_one_with_ema_for_readers(tmp_path, smoke_config):
  state = _state(smoke_config, ema=True)
  state = state.replace(ema_params=jax.tree.map(lambda a: a + 1.0, state.params))
  eight = mesh_lib.make_mesh(8)
  assert eight.size == 8
  checkpoints = Checkpoints(str(tmp_path))
  checkpoints.save(3, jax.device_put(state, mesh_lib.replicated(eight)))
  checkpoints.wait()
  one = mesh_lib.replicated(mesh_lib.make_mesh(1))
  target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one), state)
  restored = Checkpoints(str(tmp_path), read_only=True).restore(3, target)
  jax.tree.map(np.testing.assert_array_equal, restored, state)
  leaf = restored.params["encoder"]["Dense_0"]["kernel"]
  assert len(leaf.sharding.device_set) == 1
  reader = Checkpoints(str(tmp_path), read_only=True)
  assert (tmp_path / "checkpoints" / "3" / "ema_params").is_dir()
  jax.tree.map(np.testing.assert_array_equal,
               reader.restore_variables(3, {"params": target.params})["params"],
               state.ema_params)  # Readers get the EMA of the parameters.


def test_a_nan_batch_is_skipped_and_too_many_in_a_row_stop_the_run(tmp_path, smoke_config,
                                                                 poison_batches):
  workdir = str(tmp_path)
  smoke_config.train.num_steps = 10
  smoke_config.train.max_consecutive_skips = 3
  poison_batches({2})
  record = train_and_evaluate(smoke_config, workdir)
  assert record["step"] == 10
  metrics = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [m["skipped_updates"] for m in metrics] == [1, 1]
  assert metrics[0]["skipped_in_interval"] == 1 and np.isfinite(metrics[0]["loss"])
  reader = Checkpoints(workdir, read_only=True)
  model = build_model(smoke_config.model, _SHAPE)
  target = jax.eval_shape(lambda: _state(smoke_config, ema=False, model=model))
  before = reader.restore(10, target)

  smoke_config.train.num_steps = 20
  poison_batches(set(range(11, 20)))
  with pytest.raises(UserError, match=r"max_consecutive_skips=3; the last good checkpoint "
                                      r"\(step 10\) is intact"):
    train_and_evaluate(smoke_config, workdir)
  assert reader.all_steps() == [10]
  after = reader.restore(10, target)
  jax.tree.map(np.testing.assert_array_equal, after, before)


@pytest.mark.parametrize("signum, message", [
    (signal.SIGTERM, "Preempted (SIGTERM) at step {step}: saved a checkpoint in"),
    (signal.SIGINT, "Interrupted (Ctrl-C) at step {step}, saved in")])
def test_sigterm_or_ctrl_c_saves_a_checkpoint_and_exits_cleanly_then_training_resumes(
    tmp_path, smoke_config, long_trainer, signum, message):
  workdir = str(tmp_path / "run")
  command, env = long_trainer(workdir, 1000000)
  process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
  lines = []
  try:
    deadline = time.monotonic() + 120
    for line in process.stdout:  # Wait until it trains, then preempt it.
      lines.append(line)
      if line.startswith("step 10:") or time.monotonic() > deadline:
        break
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
  finally:
    process.kill()
  output = "".join(lines) + output
  assert process.returncode == 0, output
  assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
  step = Checkpoints(workdir, read_only=True).latest_step()
  assert step is not None and step >= 10, output
  assert message.format(step=step) in output, output

  smoke_config.train.num_steps = step + 2
  smoke_config.train.checkpoint_every = 1000000
  record = train_and_evaluate(smoke_config, workdir)
  assert record["step"] == step + 2


def test_a_second_ctrl_c_stops_at_once_and_the_handlers_are_restored():
  before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
  with loop._Preemption() as preemption:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.01)  # Python runs the handler at the next bytecode of the main thread.
    assert preemption.reached(0) and preemption.interrupted
    assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL  # The next Ctrl-C ends the process.
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
