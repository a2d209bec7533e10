"""Gradient diagnostics: the signal-to-noise ratio of the training gradient, per parameter group.

    snr = gradient_snr(model, variables, batch, options, key, num_draws=200)
    snr["encoder"]["posterior_head"], snr["decoder"]["decoder"]

Rainforth et al. (2018) show that the IWAE bound's gradient for the inference network has a
signal-to-noise ratio `|E[g]| / std[g]` that falls like `1 / sqrt(K)`; doubly reparameterized
gradients (Tucker et al., 2019) do not. Measured here at fixed parameters over independent draws
of the K samples, for any objective the trainer has.
"""

import functools

import jax
import numpy as np

from jaxvae.models import interface
from jaxvae.runtime.trained import split_variables
from jaxvae.train.state import StepOptions, loss_and_metrics


def per_parameter_snr(gradients: np.ndarray) -> np.ndarray:
  """`|mean| / std` over the first axis of `gradients [N, ...]` (std with divisor N - 1): `[...]`;
  0 where both are 0 (a parameter the objective does not touch)."""
  gradients = np.asarray(gradients, np.float64)
  mean, std = np.abs(gradients.mean(0)), gradients.std(0, ddof=1)
  return np.where(std > 0, mean / np.where(std > 0, std, 1.0), 0.0)


def gradient_snr(model, variables: dict, batch: dict, options: StepOptions, key: jax.Array,
                 num_draws: int) -> dict[str, dict[str, float]]:
  """The mean over each parameter group of the per-parameter SNR of the gradient of the training
  loss (`options`: the objective, K, M) on `batch = {'image': [B, ...], 'label': [B]}` at fixed
  `variables`, over `num_draws` independent draws of the samples (one key each, from `key`).

  Returns `{'encoder': {group: snr}, 'decoder': {group: snr}}`, groups being the top-level
  parameter subtrees and the encoder's the model's `inference_modules` (capability
  SEPARATE_INFERENCE; without it every group is under 'decoder').
  """
  params, model_state = split_variables(variables)
  images, labels = batch["image"], batch.get("label")
  shape = (options.num_groups * options.num_samples, images.shape[0])
  loss = functools.partial(loss_and_metrics, model=model, options=options, beta=options.beta)

  @jax.jit
  def gradients(keys):
    def one(key):
      return jax.grad(loss, has_aux=True)(params, model_state, images, labels,
                                          jax.random.split(key, shape))[0]
    return jax.lax.map(one, keys)  # One draw at a time: memory of one backward pass.

  grads = jax.device_get(gradients(jax.random.split(key, num_draws)))
  inference = set(model.inference_modules) if interface.has(
      model, interface.SEPARATE_INFERENCE) else set()
  summary = {"encoder": {}, "decoder": {}}
  for group, tree in grads.items():
    snr = np.concatenate([per_parameter_snr(g).ravel() for g in jax.tree.leaves(tree)])
    summary["encoder" if group in inference else "decoder"][group] = float(np.mean(snr))
  return summary


def snr_against_k(model, variables: dict, batch: dict, objectives: dict[str, str],
                  ks: tuple[int, ...], key: jax.Array, num_draws: int) -> dict:
  """Rainforth et al.'s (2018) figure as numbers: for each `{label: objective}` and K in `ks`, the
  encoder's and the decoder's SNR (means over their parameter groups of `gradient_snr`).

  Returns `{label: {'K': [...], 'encoder': [...], 'decoder': [...]}}`, lists aligned with `ks`.
  """
  curves = {}
  for label, objective in objectives.items():
    curve = {"K": list(ks), "encoder": [], "decoder": []}
    for k in ks:
      options = StepOptions(objective=objective, num_samples=k)
      snr = gradient_snr(model, variables, batch, options, key, num_draws)
      for part in ("encoder", "decoder"):
        curve[part].append(float(np.mean(list(snr[part].values()))) if snr[part] else float("nan"))
    curves[label] = curve
  return curves
