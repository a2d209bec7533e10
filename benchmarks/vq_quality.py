"""VQ-VAE quality on the embedded digits: codebook use with and without data initialization and
dead-code restarts, reconstruction error, and the bits/dim bound with the uniform and with the
learned (causal transformer) code prior.

    .venv/bin/python -m benchmarks.vq_quality [--quick]

Every run starts from configs/digits_vqvae.py (8x8 -> a 4x4 grid, 64 codes of 8 dims, EMA codebook)
and changes only the keys listed; the code prior is configs/digits_vq_prior.py on the first stage
with k-means initialization and restarts. One seed each; all numbers on the 300 test digits.
Writes the section "vq_quality" of BENCHMARKS.md and its record in benchmarks/results.json.
"""

import os
import tempfile
import time

import jax
import numpy as np

from benchmarks import common

BATCH_SIZE = 32  # XLA:CPU runs the trainer's sharded conv step slowly: small, short runs
VARIANTS = [  # (name, model overrides)
    ("random init, no restarts", {"codebook_init": "random", "restart_dead_codes": False}),
    ("random init + restarts", {"codebook_init": "random", "restart_dead_codes": True}),
    ("k-means init, no restarts", {"codebook_init": "kmeans", "restart_dead_codes": False}),
    ("k-means init + restarts", {"codebook_init": "kmeans", "restart_dead_codes": True}),
]


def _config(name: str, num_steps: int, **model):
  config = common.config_file(name)
  config.train.num_devices = 1
  config.train.progress_bar = False
  config.train.num_steps = config.train.checkpoint_every = num_steps
  config.train.batch_size = BATCH_SIZE
  config.train.log_every = max(num_steps // 4, 1)
  config.model.update(model)
  return config


def code_usage(workdir: str) -> dict:
  """On the test split: the fraction of codes used, their perplexity, and the reconstruction's
  mean squared error per pixel (mean of p(x | z_q) against the binarized test digit)."""
  from jaxvae import data as data_lib
  from jaxvae.models.vq_quantizer import perplexity
  from jaxvae.runtime.trained import load_trained

  config, model, variables, _ = load_trained(workdir)  # the last step's params and codebook
  split = data_lib.load_split(config.data, config.data.eval_split)
  apply = jax.jit(lambda x: (model.apply(variables, x, method=model.encode),
                             model.apply(variables, x, method=model.reconstruct)))
  codes, errors = [], []
  for batch in data_lib.eval_batches(config, split, 100):
    c, recon = apply(batch["image"])
    codes.append(np.asarray(c)[batch["mask"]])
    errors.append(np.mean((np.asarray(recon) - batch["image"]) ** 2, axis=(1, 2, 3))[batch["mask"]])
  counts = np.bincount(np.concatenate(codes).ravel(), minlength=config.model.num_codes)
  return {"codes_used": float(np.mean(counts > 0)), "perplexity": float(perplexity(counts)),
          "mse_per_pixel": float(np.mean(np.concatenate(errors)))}


def run(quick: bool) -> tuple[str, dict]:
  from jaxvae.train import train_and_evaluate

  num_steps, prior_steps = (20, 20) if quick else (600, 600)
  record = {"num_steps": num_steps, "prior_steps": prior_steps, "variants": {}}
  with tempfile.TemporaryDirectory() as root:
    for i, (name, overrides) in enumerate(VARIANTS[::3] if quick else VARIANTS):
      start = time.perf_counter()
      workdir = os.path.join(root, str(i))
      result = train_and_evaluate(_config("digits_vqvae", num_steps, **overrides), workdir)
      record["variants"][name] = {
          "overrides": overrides, **code_usage(workdir), "log_px_bound": result["log_px"],
          "bits_per_dim": result["bits_per_dim"], "seconds": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    prior = train_and_evaluate(_config("digits_vq_prior", prior_steps, first_stage_workdir=workdir),
                               os.path.join(root, "prior"))
  uniform = record["variants"][VARIANTS[-1][0]]
  record["learned_prior"] = {"log_px_bound": prior["log_px"], "bits_per_dim": prior["bits_per_dim"],
                             "seconds": round(time.perf_counter() - start, 1)}
  lines = [
      "## VQ-VAE on the embedded digits",
      "",
      f"configs/digits_vqvae.py (8x8 digits -> 4x4 grid of codes, a 64-code book, EMA codebook), "
      f"{num_steps} steps of batch {BATCH_SIZE} per run, one seed; test split (300 digits). Codes "
      f"used and perplexity count the codes of every test grid; MSE compares the reconstruction's "
      f"mean with the binarized digit. The bound is `log p(x | z_q) + log p(z_q)` (nats; bits/dim "
      f"over 64 pixels). `python -m benchmarks.vq_quality`.",
      "",
      "| codebook | codes used | perplexity | MSE / pixel | bound, uniform prior (nats) "
      "| bits/dim |",
      "| --- | --- | --- | --- | --- | --- |",
  ]
  for name, e in record["variants"].items():
    lines.append(f"| {name} | {e['codes_used']:.0%} ({round(e['codes_used'] * 64)}/64) | "
                 f"{e['perplexity']:.1f} | {e['mse_per_pixel']:.4f} | {e['log_px_bound']:.2f} | "
                 f"{e['bits_per_dim']:.4f} |")
  gain = prior["bits_per_dim"] - uniform["bits_per_dim"]
  lines += [
      "",
      f"Code prior (configs/digits_vq_prior.py, a 2-layer causal transformer, {prior_steps} steps) "
      f"on the k-means + restarts first stage: the same `log p(x | z_q)`, the prior term replaced.",
      "",
      "| code prior | bound (nats) | bits/dim |",
      "| --- | --- | --- |",
      f"| uniform, log(1/64) per position | {uniform['log_px_bound']:.2f} | "
      f"{uniform['bits_per_dim']:.4f} |",
      f"| learned (causal transformer) | {prior['log_px']:.2f} | {prior['bits_per_dim']:.4f} "
      f"({gain:+.4f}) |",
  ]
  return "\n".join(lines), record


if __name__ == "__main__":
  common.main("vq_quality", run)
