"""The trainer: train state, the pure train step, the loop (`train_and_evaluate`)."""

from jaxvae.train.loop import train_and_evaluate
from jaxvae.train.state import TrainState, make_optimizer, train_step

__all__ = ["TrainState", "make_optimizer", "train_and_evaluate", "train_step"]
