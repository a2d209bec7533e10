"""The fast part of the kill-and-resume soak (the long one: `python
tests/reliability/kill_harness.py --kills=100 --follow`, see RELIABILITY.md): SIGKILL at a random moment, SIGKILL in the middle of an
asynchronous checkpoint save and SIGTERM (preemption), each followed by a restart, with the eval job
following the checkpoints; the result equals an uninterrupted run bit for bit."""

import kill_harness


def test_killed_and_preempted_training_ends_bit_exact_and_each_step_is_evaluated_once(
    tmp_path, tfds_dir):
  figures = kill_harness.soak(str(tmp_path), tfds_dir, kills=3, seed=0, follow=True)
  assert figures["failures"] == [], figures
  assert figures["kills"] == 3 and set(figures["by_mode"].values()) == {1}, figures
  assert figures["mid_save_kills"] >= 1 and figures["clean_preemptions"] == 1, figures
  assert figures["final_bit_exact"] and figures["files_lost"] == 0, figures
  assert figures["steps_compared"] == figures["num_steps"] // kill_harness.CHECKPOINT_EVERY
  assert figures["evaluated_once"] == figures["steps_seen"], figures  # Every step, once.
