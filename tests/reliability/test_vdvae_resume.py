"""A very deep VAE's training killed with SIGKILL right after its first checkpoint and restarted
ends with the train state of an uninterrupted run, bit for bit, at every checkpoint."""

import os
import signal
import sys

import kill_harness

CONFIG = os.path.join(kill_harness.ROOT, "configs", "digits_vdvae.py") + ":smoke"


def _command(workdir: str, data_dir: str) -> list[str]:
  return [sys.executable, "-m", "jaxvae.cli", "train", f"--workdir={workdir}", f"--config={CONFIG}",
          f"--config.data.data_dir={data_dir}", "--config.train.num_steps=12",
          "--config.train.checkpoint_every=4", "--config.train.log_every=4",
          "--config.train.keep_checkpoints=10", "--config.train.ema_decay=0.9",
          "--config.eval.after_training=False"]


def test_sigkilled_vdvae_run_resumes_bit_exactly(tmp_path, tfds_dir):
  env = kill_harness.environment(str(tmp_path))
  reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
  log = str(tmp_path / "train.log")
  assert kill_harness._run(_command(reference, tfds_dir), env, log).wait(timeout=600) == 0
  process = kill_harness._run(_command(killed, tfds_dir), env, log)
  while process.poll() is None and not kill_harness.finalized_steps(killed):
    pass
  process.send_signal(signal.SIGKILL)
  assert process.wait(timeout=60) == -signal.SIGKILL, open(log).read()[-2000:]
  assert kill_harness.finalized_steps(killed)[-1] < 12  # Killed before the end.
  assert kill_harness._run(_command(killed, tfds_dir), env, log).wait(timeout=600) == 0
  target = kill_harness.restore_target(reference)
  assert kill_harness.finalized_steps(killed) == [4, 8, 12]
  for step in (4, 8, 12):
    assert kill_harness.equal_states(killed, reference, step, target), step
