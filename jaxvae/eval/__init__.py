"""Evaluation: importance-sampled log p(x) of checkpoints (one-shot or following a run), posterior
diagnostics and refinement, and samples."""

from jaxvae.eval.job import follow
from jaxvae.eval.log_likelihood import Evaluator, evaluate, evaluate_step
from jaxvae.eval.sample import sample_to_png

__all__ = ["Evaluator", "evaluate", "evaluate_step", "follow", "sample_to_png"]
