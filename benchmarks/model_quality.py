"""Model quality on the embedded digits: each model family trained with the one trainer and measured
by the one evaluator (test log p(x) at K = 5000, the ELBO, and their gap).

    .venv/bin/python -m benchmarks.model_quality [--quick]

Writes the section "model_quality" of BENCHMARKS.md and its record in benchmarks/results.json.
Every run starts from configs/digits_vae.py (MLP 64-256-256-z8, tanh, Bernoulli, dynamically
binarized 8x8 digits) and changes only the keys listed; one seed each.
"""

import os
import tempfile
import time

FAMILIES = [  # (name, config overrides)
    ("VAE: diagonal q, N(0, I), ELBO", {}),
    ("IWAE, K = 50", {"train.objective": "iwae", "train.num_samples": 50}),
    ("IAF q (4 steps)", {"model.posterior": "iaf", "model.num_flows": 4}),
    ("mixture q (4 components)", {"model.posterior": "mixture", "model.num_components": 4}),
    ("Ladder VAE, 2 layers z(16)-z(8), KL warm-up", {"model.kind": "hvae",
                                                     "model.latent_dims": (16, 8),
                                                     "train.kl_warmup_steps": 500}),
    ("planar flow q (4 steps)", {"model.posterior": "planar_flow", "model.num_flows": 4}),
    ("full-covariance q", {"model.posterior": "full_cov"}),
    ("mixture prior (10 components)", {"model.prior": "mixture", "model.num_components": 10}),
    ("VampPrior (50 pseudo-inputs)", {"model.prior": "vamp", "model.num_pseudo_inputs": 50}),
]


def _config(overrides: dict, num_steps: int, num_samples: int):
  from jaxvae.config import get_config

  config = get_config()
  config.train.num_devices = 1
  config.train.num_steps = num_steps
  config.train.log_every = max(num_steps // 4, 1)
  config.train.checkpoint_every = num_steps
  config.eval.num_samples = num_samples
  config.eval.chunk_size = min(500, num_samples)
  for key, value in overrides.items():
    section, name = key.split(".")
    config[section][name] = value
  return config


def run(quick: bool) -> tuple[str, dict]:
  from jaxvae.train import train_and_evaluate

  num_steps, num_samples = (20, 10) if quick else (4_000, 5_000)
  rows, record = [], {"num_steps": num_steps, "num_samples": num_samples, "families": {}}
  with tempfile.TemporaryDirectory() as root:
    for i, (name, overrides) in enumerate(FAMILIES[:2] if quick else FAMILIES):
      start = time.perf_counter()
      result = train_and_evaluate(_config(overrides, num_steps, num_samples),
                                  os.path.join(root, str(i)))
      entry = {"overrides": {k: list(v) if isinstance(v, tuple) else v
                             for k, v in overrides.items()},
               "log_px": result["log_px"], "log_px_stderr": result["log_px_stderr"],
               "elbo": result["elbo"], "gap": result["log_px"] - result["elbo"],
               "num_examples": result["num_examples"],
               "seconds": round(time.perf_counter() - start, 1)}
      record["families"][name] = entry
      rows.append(f"| {name} | `{', '.join(f'{k}={v}' for k, v in overrides.items()) or '-'}` | "
                  f"{entry['log_px']:.2f} +- {entry['log_px_stderr']:.2f} | {entry['elbo']:.2f} | "
                  f"{entry['gap']:.2f} |")
      print(rows[-1], flush=True)
  base = record["families"][FAMILIES[0][0]]
  markdown = "\n".join([
      "## Model quality on the embedded digits",
      "",
      f"Each family trained for {num_steps:,} steps (batch 100, Adam 1e-3) from "
      f"`configs/digits_vae.py` with the keys shown changed, one seed; the test split "
      f"({base['num_examples']} images) evaluated by the evaluator at K = {num_samples:,}. "
      "log p(x) is the K-sample importance-sampled estimate (a lower bound that tightens with K), "
      "ELBO the mean of the same log weights, gap = log p(x) - ELBO (nats; higher log p(x) is "
      "better, a smaller gap means a better posterior). +- is the standard error over test "
      "images; differences below about twice it are not significant. Measured with",
      "",
      "```bash",
      f".venv/bin/python -m benchmarks.model_quality{' --quick' if quick else ''}",
      "```",
      "",
      "| model | config changes | test log p(x) | test ELBO | gap |",
      "| --- | --- | --- | --- | --- |",
      *rows,
  ])
  return markdown, record


if __name__ == "__main__":
  common.main("model_quality", run)
