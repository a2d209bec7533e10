"""The layout of a run directory: every file and folder name a workdir holds, in one place.

    WORKDIR/config.json                    the run's resolved config
    WORKDIR/checkpoints/<step>/            Orbax checkpoints (`jaxvae.runtime.checkpoint`)
    WORKDIR/metrics.jsonl                  the trainer's log intervals
    WORKDIR/eval/log_likelihood.jsonl      one line per (checkpoint, split, K): the eval ledger
    WORKDIR/eval/diagnostics.jsonl         one line per (checkpoint, split)
    WORKDIR/images/<grid>_<step>.png       the trainer's image grids
    WORKDIR/tensorboard/{train,eval,images}
    WORKDIR/curves.png                     `jaxvae plot`'s default output
    WORKDIR/<grid>.png                     `jaxvae sample`'s default output (samples.png, ...)

Paths may be local or gs://.
"""

import os


def config_path(workdir: str) -> str:
  return os.path.join(workdir, "config.json")


def checkpoints_dir(workdir: str) -> str:
  return os.path.join(workdir, "checkpoints")


def train_metrics_path(workdir: str) -> str:
  return os.path.join(workdir, "metrics.jsonl")


def eval_path(workdir: str) -> str:
  return os.path.join(workdir, "eval", "log_likelihood.jsonl")


def diagnostics_path(workdir: str) -> str:
  return os.path.join(workdir, "eval", "diagnostics.jsonl")


def image_path(workdir: str, grid: str, step: int) -> str:
  return os.path.join(workdir, "images", f"{grid}_{step:08d}.png")


def tensorboard_dir(workdir: str, part: str) -> str:
  """`part`: 'train', 'eval' or 'images'."""
  return os.path.join(workdir, "tensorboard", part)


def curves_path(workdir: str) -> str:
  return os.path.join(workdir, "curves.png")


def grid_path(workdir: str, grid: str) -> str:
  return os.path.join(workdir, f"{grid}.png")
