"""Metric writers: one JSON line per record plus TensorBoard scalars, from process 0 only.

Paths may be local or gs:// (through etils.epath; gs:// needs `pip install jaxvae[gcs]`).
"""

import json

import jax
import numpy as np
from etils import epath


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
    append_text(self._jsonl_path, json.dumps(record) + "\n")
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
  path = epath.Path(path)
  if not path.exists():
    return []
  lines = path.read_text().split("\n")
  return [json.loads(line) for line in lines[:-1] if line.strip()]


def drop_records_after(path: str, step: int, rollbacks: int = 0) -> int:
  """Removes the records of steps after `step`, and those of rollbacks numbered above `rollbacks`
  (field `rollback`), from the JSONL file at `path` (a resumed run, or one that rolled back, writes
  them again); returns how many it removed. The file is replaced whole, atomically."""
  records = read_jsonl(path)
  kept = [r for r in records if r["step"] <= step and r.get("rollback", 0) <= rollbacks]
  if len(kept) < len(records):
    temporary = epath.Path(path + ".tmp")
    temporary.write_text("".join(json.dumps(r) + "\n" for r in kept))
    temporary.replace(path)
  return len(records) - len(kept)


def append_text(path: str, text: str) -> None:
  """Appends `text` to the file at `path`, creating it and its directory. Cloud Storage objects
  cannot be appended to: a gs:// file is rewritten whole (metric files and ledgers are small)."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if str(path).startswith("gs://"):
    path.write_text((path.read_text() if path.exists() else "") + text)
    return
  with path.open("a") as f:
    f.write(text)
