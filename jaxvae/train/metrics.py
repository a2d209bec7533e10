"""Metric writers: one JSON line per record plus TensorBoard scalars, from process 0 only."""

import json
import os

import jax
import numpy as np


class MetricWriter:
  """Appends `{'step': s, **scalars}` lines to `jsonl_path` and the scalars to TensorBoard."""

  def __init__(self, jsonl_path: str, tensorboard_dir: str):
    self._enabled = jax.process_index() == 0
    self._jsonl_path = jsonl_path
    self._tensorboard_dir = tensorboard_dir
    self._tensorboard = None

  def write(self, step: int, scalars: dict, tag_prefix: str = "") -> None:
    if not self._enabled:
      return
    record = {"step": int(step)}
    record.update({k: v.item() if isinstance(v, np.generic | np.ndarray) else v
                   for k, v in scalars.items()})
    os.makedirs(os.path.dirname(self._jsonl_path), exist_ok=True)
    with open(self._jsonl_path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tensorboard is None:
      from tensorboardX import SummaryWriter  # Imported on first write: it is slow to import.

      self._tensorboard = SummaryWriter(self._tensorboard_dir)
    for key, value in record.items():
      if key != "step" and isinstance(value, int | float):
        self._tensorboard.add_scalar(tag_prefix + key, value, step)
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSONL file, or [] if it does not exist. A last line without its newline is
  one being written (or cut off by a kill): it is ignored."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split("\n")
  return [json.loads(line) for line in lines[:-1] if line.strip()]
