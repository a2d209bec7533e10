"""The 1-D toy: a bimodal mixture of two Gaussians, the classic case for a discrete latent variable.

x ~ 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2); `label` is the component. Generated from a fixed seed, so
the data are the same on every machine; its exact log-density is `toy_log_density`.
"""

import math

import numpy as np

MEANS = (-2.0, 2.0)
SCALE = 0.5
NUM_EXAMPLES = {"train": 2_000, "test": 500}


def toy_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
  """`(x [N, 1] float32, component [N] int64)` of `split` ('train' or 'test')."""
  seed = {"train": 0, "test": 1}[split]
  rng = np.random.default_rng(seed)
  component = rng.integers(0, 2, NUM_EXAMPLES[split])
  x = np.asarray(MEANS)[component] + SCALE * rng.standard_normal(NUM_EXAMPLES[split])
  return x[:, None].astype(np.float32), component.astype(np.int64)


def toy_log_density(x: np.ndarray) -> np.ndarray:
  """The data distribution's exact log-density, elementwise (float64)."""
  x = np.asarray(x, np.float64)
  log_components = [-0.5 * ((x - m) / SCALE) ** 2 - math.log(SCALE * math.sqrt(2 * math.pi))
                    for m in MEANS]
  return np.logaddexp(*log_components) - math.log(2.0)
