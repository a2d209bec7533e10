"""Evaluation: importance-sampled log p(x) of checkpoints, and samples."""

from jaxvae.eval.log_likelihood import evaluate, importance_sampled_log_px
from jaxvae.eval.sample import sample_to_png

__all__ = ["evaluate", "importance_sampled_log_px", "sample_to_png"]
