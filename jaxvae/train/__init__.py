"""The trainer: train state, pure train step, mesh and shardings, Orbax checkpoints, metric writers."""

from jaxvae.train.checkpoint import Checkpoints
from jaxvae.train.loop import train_and_evaluate
from jaxvae.train.state import TrainState, make_optimizer, train_step

__all__ = ["Checkpoints", "TrainState", "make_optimizer", "train_and_evaluate", "train_step"]
