"""Model quality on the embedded digits: each model family trained with the one trainer and measured
by the one evaluator (test log p(x) at K = 5000, the ELBO, and their gap).

    .venv/bin/python -m benchmarks.model_quality [--quick]

Writes the section "model_quality" of BENCHMARKS.md and its record in benchmarks/results.json.
Every run starts from configs/digits_vae.py (MLP 64-256-256-z8, tanh, Bernoulli, dynamically
binarized 8x8 digits) and changes only the keys listed, once per seed in SEEDS.
"""

import os
import tempfile
import time

import numpy as np

from benchmarks import common

FAMILIES = [  # (name, config overrides); the first is the baseline the others are compared with
    ("VAE: diagonal q, N(0, I), ELBO", {}),
    ("VAE, 8-sample ELBO", {"train.num_samples": 8}),
    ("IWAE, K = 50", {"train.objective": "iwae", "train.num_samples": 50}),
    ("IAF q (4 steps)", {"model.posterior": "iaf", "model.num_flows": 4}),
    ("mixture q (8 components, stratified)", {"model.posterior": "mixture",
                                              "model.num_components": 8, "train.num_samples": 8}),
    ("planar flow q (4 steps)", {"model.posterior": "planar_flow", "model.num_flows": 4}),
    ("full-covariance q", {"model.posterior": "full_cov"}),
    ("Ladder VAE, 2 layers z(16)-z(8), KL warm-up", {"model.kind": "hvae",
                                                     "model.latent_dims": (16, 8),
                                                     "train.kl_warmup_steps": 500}),
    ("mixture prior (10 components)", {"model.prior": "mixture", "model.num_components": 10}),
    ("VampPrior (50 pseudo-inputs)", {"model.prior": "vamp", "model.num_pseudo_inputs": 50}),
]
SEEDS = (0, 1, 2)


def _config(overrides: dict, num_steps: int, num_samples: int):
  from jaxvae.config import get_config

  config = get_config(model=overrides.get("model.kind", "vae"))  # that kind's model section
  config.train.num_devices = 1
  config.train.num_steps = num_steps
  config.train.log_every = max(num_steps // 4, 1)
  config.train.checkpoint_every = num_steps
  config.eval.num_samples = num_samples
  config.eval.chunk_size = min(500, num_samples)
  for key, value in overrides.items():
    section, name = key.split(".")
    if key != "model.kind":
      config[section][name] = value
  return config


def run(quick: bool) -> tuple[str, dict]:
  num_steps, num_samples = (20, 10) if quick else (4_000, 5_000)
  families, seeds = (FAMILIES[:2], SEEDS[:1]) if quick else (FAMILIES, SEEDS)
  record = train_families(families, seeds, num_steps, num_samples)
  return _markdown(record, quick), record


def train_families(families: list[tuple[str, dict]], seeds, num_steps: int,
                   num_samples: int) -> dict:
  """Trains each family once per seed and evaluates it at K = `num_samples`: the record that
  `table` draws (families in order, the baseline first)."""
  from jaxvae.train import train_and_evaluate

  record = {"num_steps": num_steps, "num_samples": num_samples, "seeds": list(seeds),
            "families": []}
  with tempfile.TemporaryDirectory() as root:
    for i, (name, overrides) in enumerate(families):
      runs = []
      for seed in seeds:
        config = _config(overrides, num_steps, num_samples)
        config.seed = seed
        start = time.perf_counter()
        result = train_and_evaluate(config, os.path.join(root, f"{i}_{seed}"))
        runs.append({"seed": seed, "log_px": result["log_px"],
                     "log_px_stderr": result["log_px_stderr"], "elbo": result["elbo"],
                     "gap": result["log_px"] - result["elbo"],
                     "num_examples": result["num_examples"],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{name}, seed {seed}: {runs[-1]}", flush=True)
      record["families"].append({
          "name": name,
          "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
          "runs": runs})
  return record


def table(record: dict) -> list[str]:
  """The table's lines: per family the mean +- standard deviation over seeds, and in how many
  seeds it beats the baseline (first family) trained with the same seed; then the findings."""
  families = record["families"]
  base_runs = families[0]["runs"]
  seeds = record["seeds"]
  rows = []
  for family in families:
    name, runs = family["name"], family["runs"]
    (log_px, log_px_sd), (elbo, _), (gap, gap_sd) = (
        (np.mean([r[key] for r in runs]), np.std([r[key] for r in runs]))
        for key in ("log_px", "elbo", "gap"))
    changes = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}"
                        for k, v in family["overrides"].items()) or "-"
    per_seed = " / ".join(f"{r['gap']:.2f}" for r in runs)
    rows.append(f"| {name} | `{changes}` | {log_px:.2f} +- {log_px_sd:.2f} | {elbo:.2f} | "
                f"{gap:.2f} +- {gap_sd:.2f} | {per_seed} | "
                + ("- | - |" if runs is base_runs else
                   f"{_wins(runs, base_runs, 'log_px', 1)}/{len(runs)} | "
                   f"{_wins(runs, base_runs, 'gap', -1)}/{len(runs)} |"))
  return ["| model | config changes | test log p(x) | test ELBO | gap | gap per seed | "
          "log p(x) above the first row's | gap below the first row's |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |",
          *rows, "", *_findings(families, len(seeds))]


def _markdown(record: dict, quick: bool) -> str:
  first, seeds = record["families"][0]["runs"][0], record["seeds"]
  return "\n".join([
      "## Model quality on the embedded digits",
      "",
      f"Each family trained for {record['num_steps']:,} steps (batch 100, Adam 1e-3) from "
      f"`configs/digits_vae.py` with the keys shown changed, with {len(seeds)} seed(s) "
      f"({', '.join(map(str, seeds))}); the test split ({first['num_examples']} images) "
      f"evaluated by the evaluator at K = {record['num_samples']:,}. log p(x) is the K-sample "
      "importance-sampled estimate (a lower bound that tightens with K), ELBO the mean of the same "
      "log weights, gap = log p(x) - ELBO (nats; higher log p(x) is better, a smaller gap means a "
      "better posterior). Values are the mean +- standard deviation over seeds; the last two "
      "columns count the seeds in which the family beats the first row trained with the same "
      "seed (same data order). The standard error over test images of one run's log p(x) is "
      f"about {first['log_px_stderr']:.2f} nats, but it is shared by all families (the same test "
      "images), so the paired per-seed comparison is the one to read. Measured with",
      "",
      "```bash",
      f".venv/bin/python -m benchmarks.model_quality{' --quick' if quick else ''}",
      "```",
      "",
      *table(record),
  ])


def _wins(runs: list[dict], against: list[dict], key: str, sign: int) -> int:
  """In how many seeds `sign * runs[key]` exceeds `sign * against[key]` of the same seed."""
  base = {r["seed"]: r[key] for r in against}
  return sum(sign * (r[key] - base[r["seed"]]) > 0 for r in runs)


def _findings(families: list[dict], num_seeds: int) -> list[str]:
  """Sentences naming the families that beat the first row in every seed, and each multi-sample
  ELBO family against the plain VAE trained with as many samples (when the table has it)."""
  first = families[0]["runs"]
  better = [f["name"] for f in families[1:] if _wins(f["runs"], first, "log_px", 1) == num_seeds]
  tighter = [f["name"] for f in families[1:] if _wins(f["runs"], first, "gap", -1) == num_seeds]
  lines = [f"In all {num_seeds} seeds, against the first row: a higher test log p(x) for "
           f"{'; '.join(better) or 'none'}; a smaller gap for {'; '.join(tighter) or 'none'}."]
  controls = {f["overrides"]["train.num_samples"]: f for f in families
              if set(f["overrides"]) == {"train.num_samples"}}
  for family in families:
    k = family["overrides"].get("train.num_samples")
    if k in controls and controls[k] is not family and family["overrides"].get(
        "train.objective", "elbo") == "elbo":
      control = controls[k]["runs"]
      lines.append(
          f"{family['name']} draws {k} samples per step, so its control is "
          f"\"{controls[k]['name']}\": its gap is smaller in "
          f"{_wins(family['runs'], control, 'gap', -1)} of {num_seeds} seeds and its log p(x) "
          f"higher in {_wins(family['runs'], control, 'log_px', 1)} of {num_seeds}.")
  return [" ".join(lines)]


if __name__ == "__main__":
  common.main("model_quality", run)
