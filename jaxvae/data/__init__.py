"""Datasets (embedded digits, tfds by name, npz) flowing through one grain pipeline."""

from jaxvae.data.pipeline import Split, eval_batches, iterate_from, load_split, train_batches

__all__ = ["Split", "eval_batches", "iterate_from", "load_split", "train_batches"]
