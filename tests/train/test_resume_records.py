"""A resumed run writes one metrics record per logged step: the records written after the
checkpoint it resumes from (by a run killed before its next checkpoint) are replaced, not kept
twice."""

import json
import os
import shutil

from jaxvae.train import train_and_evaluate


def test_a_resumed_run_keeps_one_record_per_step(smoke_config, tmp_path):
  config = smoke_config
  config.train.progress_bar = False
  config.eval.after_training = False
  workdir = str(tmp_path)
  assert train_and_evaluate(config, workdir) is None  # no final evaluation
  assert not os.path.exists(os.path.join(workdir, "eval"))
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  with open(metrics_path) as f:
    first = [json.loads(line) for line in f]
  assert [r["step"] for r in first] == [5, 10, 15, 20]
  # As if killed after logging steps 15 and 20 but before saving step 20.
  shutil.rmtree(os.path.join(workdir, "checkpoints", "20"))
  train_and_evaluate(config, workdir)
  with open(metrics_path) as f:
    again = [json.loads(line) for line in f]
  assert [r["step"] for r in again] == [5, 10, 15, 20]
  assert [r["loss"] for r in again] == [r["loss"] for r in first]  # resumed bit-exactly
  assert all(r["save_seconds"] >= 0 and r["image_seconds"] >= 0 for r in again)
