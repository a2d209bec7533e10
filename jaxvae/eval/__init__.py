"""Evaluation: importance-sampled log p(x) of checkpoints, and samples."""

from jaxvae.eval.log_likelihood import evaluate
from jaxvae.eval.sample import sample_to_png

__all__ = ["evaluate", "sample_to_png"]
