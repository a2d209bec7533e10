"""Datasets (embedded digits, tfds by name, npz, image folders, the 1-D toy) through one grain pipeline."""

from jaxvae.data.pipeline import (
    Split,
    eval_batches,
    iterate_from,
    load_split,
    mean_image,
    prefetch_to_device,
    train_batches,
)

__all__ = [
    "Split", "eval_batches", "iterate_from", "load_split", "mean_image", "prefetch_to_device",
    "train_batches",
]
