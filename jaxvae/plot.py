"""Training and evaluation curves of one or more runs in one figure: `jaxvae plot`.

    plot_runs(["runs/digits_vae", "runs/digits_iwae"], "curves.png")

Reads each workdir's `metrics.jsonl` (the trainer's log intervals) and `eval/log_likelihood.jsonl`
(the evaluator's records), also while the run is in progress: a line still being written is
ignored. One panel per quantity that some run has records of: the trainer's own, then one per
metric the model writes (its `metrics` and `losses` collections, e.g. a VQ-VAE's
`quantizer_perplexity`), found in the records rather than listed here. Each series of a panel (a metric,
or an evaluation's (split, K)) has its own marker and line style, and with one run its own colour;
with several runs, each run has its own colour. A run evaluated at one checkpoint for several K
shows log p(x) against K instead of against the step.
"""

import math
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jaxvae.errors import UserError
from jaxvae.runtime import workdir as workdir_lib
from jaxvae.runtime.metrics import read_jsonl

# (panel title, y-axis label, metric keys) of the training curves; "kl_layer_*" expands to the
# per-layer KL of hierarchical models.
TRAIN_PANELS = (
    ("training loss", "nats", ("loss",)),
    ("ELBO and its likelihood term", "nats", ("elbo", "log_likelihood")),
    ("KL(q(z|x) || p(z)), total and per layer", "nats", ("kl", "kl_layer_*")),
    ("learning rate", "", ("learning_rate",)),
    ("gradient norm", "", ("grad_norm", "grad_norm_mean")),
    ("skipped updates (cumulative)", "", ("skipped_updates",)),
    ("skip rate per log interval", "", ("skip_rate",)),
)
# Trainer records that are bookkeeping, not curves.
_NOT_CURVES = ("step", "step_time", "examples_per_sec", "save_seconds", "image_seconds",
               "param_norm", "skipped_in_interval", "consecutive_skips", "longest_skip_run",
               "grad_norm_std", "rollback", "rolled_back_from_step", "learning_rate_scale")
# Evaluation panels (title, y-axis label, record key, x axis): against the step, one series per
# (split, K); against K, one series per split, for a run evaluated at one checkpoint.
EVAL_PANELS = (
    ("log p(x) for each split and K (eval)", "nats", "log_px", "step"),
    ("bits/dim for each K (eval)", "bits/dim", "bits_per_dim", "step"),
    ("log p(x) against K (eval of one checkpoint)", "nats", "log_px", "K"),
    ("bits/dim against K (eval of one checkpoint)", "bits/dim", "bits_per_dim", "K"),
)
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
_STYLES = ("-", "--", ":", "-.")  # With 10 markers: 20 series before a (marker, style) repeats.


def _train_series(records: list[dict], keys: tuple[str, ...]) -> dict[str, tuple]:
  """`{key: (steps, values)}` for each key (a `prefix*` key: every key with that prefix)."""
  names = []
  for key in keys:
    if key.endswith("*"):
      names += sorted({k for r in records for k in r if k.startswith(key[:-1])})
    else:
      names.append(key)
  series = {}
  for name in names:
    points = [(r["step"], r[name]) for r in records if isinstance(r.get(name), int | float)]
    if points:
      series[name] = tuple(np.array(v, np.float64) for v in zip(*points))
  return series


def _eval_series(records: list[dict], key: str, x: str) -> dict[str, tuple]:
  """`x='step'`: `{'split K=k': (steps, values)}`; `x='K'`: `{'split (step s)': (Ks, values)}`.
  The last record per point wins. A run evaluated at one checkpoint for several K has only the K
  series, any other run only the step series."""
  records = [r for r in records if isinstance(r.get(key), int | float)]
  one_checkpoint = (len({r["step"] for r in records}) == 1
                    and len({r["num_samples"] for r in records}) > 1)
  if (x == "K") != one_checkpoint:
    return {}
  groups = {}
  for r in records:
    if x == "K":
      groups.setdefault(f"{r['split']} (step {r['step']})", {})[r["num_samples"]] = r[key]
    else:
      groups.setdefault((r["split"], r["num_samples"]), {})[r["step"]] = r[key]
  return {(label if x == "K" else f"{label[0]} K={label[1]}"): (
      np.array(sorted(points), np.float64), np.array([points[s] for s in sorted(points)],
                                                     np.float64))
          for label, points in sorted(groups.items())}


def read_run(workdir: str) -> dict[str, dict[str, tuple]]:
  """`{panel title: {series label: (steps [N], values [N])}}` of the run in `workdir`.

  Raises `UserError` when `workdir` is missing or holds neither metrics nor eval records.
  """
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir={workdir} does not exist; give the directory of a jaxvae train run")
  train = read_jsonl(workdir_lib.train_metrics_path(workdir))
  evals = read_jsonl(workdir_lib.eval_path(workdir))
  if not train and not evals:
    raise UserError(f"{workdir} holds no metrics yet (neither metrics.jsonl nor "
                    f"eval/log_likelihood.jsonl has a complete line); plot a run after its first "
                    f"log interval (train.log_every)")
  panels = {title: _train_series(train, keys) for title, _, keys in TRAIN_PANELS}
  panels.update({_model_panel(key): _train_series(train, (key,)) for key in _model_metrics(train)})
  panels.update({title: _eval_series(evals, key, x) for title, _, key, x in EVAL_PANELS})
  return panels


def _model_panel(key: str) -> str:
  return f"{key} (model)"


def _model_metrics(records: list[dict]) -> list[str]:
  """The metric keys of `records` that no trainer panel draws: those the model writes."""
  drawn = [key for _, _, keys in TRAIN_PANELS for key in keys]
  claimed = lambda k: any(k == d or (d.endswith("*") and k.startswith(d[:-1]))  # noqa: E731
                          for d in drawn)
  return sorted({k for r in records for k, v in r.items()
                 if isinstance(v, int | float) and k not in _NOT_CURVES and not claimed(k)})


def plot_runs(workdirs: list[str], out: str) -> dict[str, dict[str, dict[str, tuple]]]:
  """Draws the curves of the runs in `workdirs` into one PNG `out`; returns what it drew,
  `{workdir: read_run(workdir)}`."""
  if not workdirs:
    raise UserError("jaxvae plot needs at least one --workdir=DIR")
  runs = {workdir: read_run(workdir) for workdir in workdirs}
  titles = [title for title in dict.fromkeys(t for panels in runs.values() for t in panels)
            if any(panels.get(title) for panels in runs.values())]
  units = {p[0]: p[1] for p in TRAIN_PANELS + EVAL_PANELS}
  by_k = {p[0] for p in EVAL_PANELS if p[3] == "K"}
  columns = min(4, len(titles))
  rows = math.ceil(len(titles) / columns)
  figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
  axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
  colours = [f"C{i % 10}" for i in range(len(workdirs))]
  names = [os.path.basename(os.path.normpath(w)) for w in workdirs]
  for ax, title in zip(axes, titles):
    labels = list(dict.fromkeys(label for panels in runs.values()
                                for label in panels.get(title, {})))
    # Series i: its own marker and line style; its own colour too when there is one run.
    look = {label: dict(marker=_MARKERS[i % len(_MARKERS)], linestyle=_STYLES[i % len(_STYLES)],
                        color=f"C{i % 10}" if len(runs) == 1 else None)
            for i, label in enumerate(labels)}
    for panels, colour in zip(runs.values(), colours):
      for label, (xs, values) in panels.get(title, {}).items():
        ax.plot(xs, values, **{**look[label], "color": look[label]["color"] or colour},
                markevery=max(1, len(xs) // 15), markersize=4)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("K (importance samples)" if title in by_k else "step")
    if title in by_k:
      ax.set_xscale("log")
    ax.set_ylabel(units.get(title, ""))
    if len(labels) > 1:  # Markers and styles name the series; colours the runs (figure legend).
      ax.legend([Line2D([], [], **{**look[label], "color": look[label]["color"] or "k"})
                 for label in labels], labels, fontsize=7)
  for ax in axes[len(titles):]:
    ax.set_visible(False)
  if len(runs) > 1:
    figure.legend([Line2D([], [], color=c) for c in colours], names, loc="outside upper center",
                  ncols=min(len(names), 6))
  else:
    figure.suptitle(names[0])
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  figure.savefig(out, dpi=90)
  print(f"Wrote the curves of {', '.join(workdirs)} to {out}")
  return runs
