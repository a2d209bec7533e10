"""Gradient estimators: the encoder's and decoder's gradient signal-to-noise ratio against K, and
model quality at equal steps on the embedded digits.

    .venv/bin/python -m benchmarks.gradient_estimators [--quick]

Writes the section "gradient_estimators" of BENCHMARKS.md, its record in benchmarks/results.json
and the figure docs/images/gradient_snr.png (SNR against K on the linear-Gaussian model and on the
trained digits VAE, for IWAE, IWAE with DReG and the K-sample ELBO).
"""

import os
import tempfile

import jax
import numpy as np

from benchmarks import common, model_quality

KS = (1, 10, 100, 1000)
SNR_OBJECTIVES = {"IWAE": "iwae", "IWAE-DReG": "iwae_dreg", "ELBO (K samples)": "elbo"}
# Two comparisons at equal steps (2,000: half the model-quality table's, for the CPU time of
# K = 50), each against its first row (3 seeds, K = 5000 evaluation).
IWAE_FAMILIES = [
    ("IWAE, K = 50", {"train.objective": "iwae", "train.num_samples": 50}),
    ("IWAE-DReG, K = 50", {"train.objective": "iwae_dreg", "train.num_samples": 50}),
    ("MIWAE, M = 5 groups of K = 10", {"train.objective": "miwae", "train.num_samples": 10,
                                       "train.num_groups": 5}),
    ("CIWAE, beta = 0.5, K = 50", {"train.objective": "ciwae", "train.num_samples": 50,
                                   "train.ciwae_beta": 0.5}),
    ("PIWAE, M = 5 groups of K = 10", {"train.objective": "piwae", "train.num_samples": 10,
                                       "train.num_groups": 5}),
]
ELBO_FAMILIES = [
    ("VAE, ELBO", {}),
    ("VAE, ELBO-STL", {"train.objective": "elbo_stl"}),
]
FIGURE = common.ROOT / "docs" / "images" / "gradient_snr.png"


def linear_gaussian_snr(ks, num_draws: int) -> dict:
  """SNR curves on a 20-dimensional linear-Gaussian model with a 5-dimensional latent and 16
  data points, q a factorized Gaussian near the posterior (its parameters shifted by 0.05)."""
  from jaxvae.models.linear_gaussian import LinearGaussian, variables_near_posterior
  from jaxvae.train import diagnostics

  rng = np.random.default_rng(0)
  w = rng.normal(size=(20, 5)) / np.sqrt(5)
  b = rng.normal(size=20)
  x = (rng.normal(size=(16, 5)) @ w.T + b + rng.normal(size=(16, 20))).astype(np.float32)
  return diagnostics.snr_against_k(LinearGaussian((20,), 5, 1.0),
                                   variables_near_posterior(w, b, 1.0, offset=0.05),
                                   {"image": x}, SNR_OBJECTIVES, ks, jax.random.key(0), num_draws)


def digits_snr(ks, num_draws: int, num_steps: int) -> dict:
  """SNR curves of the default digits VAE after `num_steps` steps, on 100 test images."""
  from jaxvae import config as config_lib
  from jaxvae import data
  from jaxvae.runtime.trained import load_trained
  from jaxvae.train import diagnostics, train_and_evaluate

  config = config_lib.get_config()
  config.train.num_devices = 1
  config.train.num_steps = config.train.checkpoint_every = num_steps
  config.train.log_every = max(num_steps // 4, 1)
  config.eval.after_training = False
  with tempfile.TemporaryDirectory() as workdir:
    train_and_evaluate(config, workdir)
    _, model, variables, _ = load_trained(workdir)
  split = data.load_split(config.data, config.data.eval_split)
  batch = next(data.eval_batches(config, split, 100))
  return diagnostics.snr_against_k(model, variables, {"image": batch["image"]}, SNR_OBJECTIVES,
                                   ks, jax.random.key(0), num_draws)


def draw_figure(curves: dict, path) -> None:
  from matplotlib.figure import Figure

  figure = Figure(figsize=(9, 6.4), layout="constrained")
  axes = figure.subplots(2, 2)
  for row, (model, by_objective) in enumerate(curves.items()):
    for column, part in enumerate(("encoder", "decoder")):
      ax = axes[row, column]
      for label, curve in by_objective.items():
        ax.plot(curve["K"], curve[part], marker="o", label=label)
      ax.set_xscale("log")
      ax.set_yscale("log")
      ax.set_xlabel("K (samples per example)")
      ax.set_ylabel("gradient SNR")
      ax.set_title(f"{model}: {part} (inference network)" if part == "encoder" else
                   f"{model}: {part} (generative network)", fontsize=10)
      ax.legend(fontsize=8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  figure.savefig(path, dpi=80)


def run(quick: bool) -> tuple[str, dict]:
  ks, draws, steps = ((1, 10), 5, 20) if quick else (KS, 200, 2_000)
  curves = {"linear-Gaussian": linear_gaussian_snr(ks, draws),
            "digits VAE": digits_snr(ks, draws, steps)}
  figure = FIGURE if not quick else os.path.join(tempfile.mkdtemp(), "gradient_snr.png")
  draw_figure(curves, figure)
  train_steps, num_samples = (20, 10) if quick else (2_000, 5_000)
  seeds = model_quality.SEEDS[:1] if quick else model_quality.SEEDS
  families = [IWAE_FAMILIES[:2], ELBO_FAMILIES] if quick else [IWAE_FAMILIES, ELBO_FAMILIES]
  records = [model_quality.train_families(f, seeds, train_steps, num_samples) for f in families]
  record = {"snr": curves, "snr_num_draws": draws, "snr_digits_steps": steps,
            "iwae_family": records[0], "elbo_family": records[1]}
  return _markdown(record, quick), record


def _snr_rows(curves: dict) -> list[str]:
  rows = ["| model | objective | " + " | ".join(f"K = {k}" for k in next(
      iter(next(iter(curves.values())).values()))["K"]) + " |",
          "| --- | --- | " + " | ".join("---" for _ in next(
              iter(next(iter(curves.values())).values()))["K"]) + " |"]
  for model, by_objective in curves.items():
    for label, curve in by_objective.items():
      rows.append(f"| {model} | {label} | " + " | ".join(
          f"{e:.3g} / {d:.3g}" for e, d in zip(curve["encoder"], curve["decoder"])) + " |")
  return rows


def _markdown(record: dict, quick: bool) -> str:
  snr = record["snr"]
  falls = {m: c["IWAE"]["encoder"][-1] < c["IWAE"]["encoder"][0] for m, c in snr.items()}
  above = {m: all(d > i for d, i in zip(c["IWAE-DReG"]["encoder"], c["IWAE"]["encoder"]))
           for m, c in snr.items()}
  return "\n".join([
      "## Gradient estimators: signal-to-noise and model quality",
      "",
      "Gradient signal-to-noise ratio `|E[g]| / std[g]` of each parameter, averaged over the "
      "parameters of each group and over the groups of the encoder (inference network) and of "
      f"the decoder (generative network), from {record['snr_num_draws']} independent draws of "
      "the K samples at fixed parameters (`jaxvae.train.diagnostics.snr_against_k`): on a "
      "linear-Gaussian model (x in 20 dimensions, z in 5, q a factorized Gaussian near the "
      f"posterior) and on the default digits VAE after {record['snr_digits_steps']:,} steps "
      "(100 test images). Each cell is encoder / decoder SNR.",
      "",
      *_snr_rows(snr),
      "",
      "![gradient SNR against K](docs/images/gradient_snr.png)",
      "",
      f"IWAE's encoder SNR falls from K = 1 to the largest K: "
      f"{', '.join(f'{m}: {falls[m]}' for m in falls)}. IWAE-DReG's encoder SNR is above "
      f"IWAE's at every K: {', '.join(f'{m}: {above[m]}' for m in above)}. The decoders' "
      "SNRs are the same for IWAE and IWAE-DReG (both take IWAE's gradient there).",
      "",
      "Model quality at equal steps, as in the model-quality table (test log p(x) at K = "
      f"{record['iwae_family']['num_samples']:,}, {record['iwae_family']['num_steps']:,} steps, "
      f"seeds {', '.join(map(str, record['iwae_family']['seeds']))}), each table against its "
      "first row. Measured with",
      "",
      "```bash",
      f".venv/bin/python -m benchmarks.gradient_estimators{' --quick' if quick else ''}",
      "```",
      "",
      *model_quality.table(record["iwae_family"]),
      "",
      *model_quality.table(record["elbo_family"]),
  ])


if __name__ == "__main__":
  common.main("gradient_estimators", run)
