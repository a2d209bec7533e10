"""Tutorial 9: deep hierarchies of latent groups (a VDVAE on the digits): top-down inference, what
the groups encode, samples at temperatures, and the gap between the ELBO and the
importance-sampled log p(x) as the hierarchy deepens."""

import os
import shutil
import tempfile

import jax
import numpy as np
from matplotlib import image as mpimg

from docs.tutorials import common
from jaxvae import config as config_lib
from jaxvae import data as data_lib
from jaxvae.eval import evaluate
from jaxvae.models import vdvae
from jaxvae.runtime import images
from jaxvae.runtime import workdir as workdir_lib
from jaxvae.runtime.metrics import read_jsonl
from jaxvae.runtime.trained import load_trained
from jaxvae.train import train_and_evaluate

NAME = "deep_hierarchies"
# Resolution stages -> (model.encoder_blocks, model.decoder_blocks); 3 is configs/digits_vdvae.py.
STAGES = {
    1: ("8x3", "8x3"),
    2: ("8x3,8d2,4x3", "4x3,8m4,8x3"),
    3: ("8x3,8d2,4x3,4d4,1x3", "1x2,4m1,4x3,8m4,8x3"),
}


def experiment(stages: int, workdir: str, num_steps: int, ks: tuple[int, ...], variant: str = ""):
  """configs/digits_vdvae.py cut to its last `stages` resolution stages, trained for `num_steps`
  steps; the test split's log p(x) estimated with each K of `ks` from one pass of the evaluator."""
  config = common.config_file("digits_vdvae")
  config.model.encoder_blocks, config.model.decoder_blocks = STAGES[stages]
  config = config_lib.apply_variant(config, variant)
  config.train.num_steps = config.train.checkpoint_every = num_steps
  config.train.log_every = num_steps // 10
  config.train.progress_bar = False
  config.train.num_devices = 1  # (docs.build forces 8 CPU devices for tutorial 6)
  config.eval.after_training = False
  config.eval.num_samples, config.eval.nested_num_samples = ks[-1], ks[:-1]
  train_and_evaluate(config, workdir)
  evaluate(config, workdir)
  return {r["num_samples"]: r for r in read_jsonl(workdir_lib.eval_path(workdir))}


def group_kls(workdir: str) -> np.ndarray:
  """`[G]` test-split KL(q || p) of each latent group, top first: the mean over the test images of
  a one-sample estimate of log q(z_g | z_<g, x) - log p(z_g | z_<g)."""
  config, model, variables, _ = load_trained(workdir)
  split = data_lib.load_split(config.data, config.data.eval_split)
  x = next(data_lib.eval_batches(config, split, len(split.source)))["image"]
  keys = jax.random.split(jax.random.key(0), (1, len(x)))
  terms = jax.jit(lambda v: model.apply(v, x, keys, method=model.layer_log_weights)[1])(variables)
  return np.asarray(terms).mean(axis=(1, 2))


def _stages(count: int) -> str:
  return f"{count} stage{'s' if count > 1 else ''}"


def _cells(path: str, shape: tuple[int, ...], columns: int, scale: int = 4) -> np.ndarray:
  """`[rows, columns, H * scale, W * scale]`: the images of a grid PNG (`images.grid_pixels`'
  layout, gray levels in [0, 1])."""
  pixels, (h, w) = mpimg.imread(path), shape[:2]
  rows = (pixels.shape[0] // scale - 1) // (h + 1)
  at = lambda i, size: slice(scale * (1 + i * (size + 1)), scale * (1 + i * (size + 1) + size))  # noqa: E731
  return np.array([[pixels[at(r, h), at(c, w)] for c in range(columns)] for r in range(rows)])


def _grid_figure(path: str, columns: list[str], rows: list[str], width: float):
  """A grid PNG written by the trainer, its columns and rows labelled."""
  pixels = mpimg.imread(path)
  fig, axes = common.figure(width=width, height=width * pixels.shape[0] / pixels.shape[1])
  ax = axes[0, 0]
  ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
  cell_w, cell_h = pixels.shape[1] / len(columns), pixels.shape[0] / max(len(rows), 1)
  ax.set_xticks((np.arange(len(columns)) + 0.5) * cell_w, columns, fontsize=8)
  ax.set_yticks((np.arange(len(rows)) + 0.5) * cell_h, rows, fontsize=8)
  ax.tick_params(length=0)
  for spine in ax.spines.values():
    spine.set_visible(False)
  return fig, ax


def run(out_dir: str, tiny: bool = False) -> dict:
  num_steps, ks, variant = (10, (1, 10), "smoke") if tiny else (3000, (1, 10, 100, 1000), "")
  depths = (1, 2) if tiny else tuple(STAGES)
  runs = tempfile.mkdtemp(prefix="jaxvae_deep_")
  results = {}
  try:
    for stages in depths:
      workdir = os.path.join(runs, str(stages))
      records = experiment(stages, workdir, num_steps, ks, variant)
      _, model, variables, _ = load_trained(workdir)
      results[stages] = {
          "groups": model.num_groups, "latent_dims": sum(model.group_sizes()),
          "parameters": sum(a.size for a in jax.tree.leaves(variables["params"])),
          "elbo": records[ks[-1]]["elbo"],
          "log_px": {k: records[k]["log_px"] for k in ks},
          "gap": {k: records[k]["gap"] for k in ks},
          "log_px_stderr": {k: records[k]["log_px_stderr"] for k in ks},
          "group_kls": group_kls(workdir).tolist(),
          "resolutions": [res for res, _ in model.decoder_blocks],
      }
    deepest = max(depths)
    counts = images.group_counts(results[deepest]["groups"])
    grids = {kind: workdir_lib.image_path(os.path.join(runs, str(deepest)), kind, num_steps)
             for kind in ("groups", "temperatures")}
    group_cells = _cells(grids["groups"], model.data_shape, 1 + len(counts))  # (every run's)
    fig, ax = _grid_figure(grids["groups"], ["x"] + [f"n={n}" for n in counts],
                           [""] * images.NUM_GROUP_ROWS, 4.2)
    ax.set_title("top n groups from q, the rest from the prior", fontsize=9)
    groups_png = common.save(fig, out_dir, f"{NAME}_groups")
    fig, ax = _grid_figure(grids["temperatures"], [""] * images.NUM_PER_TEMPERATURE,
                           [f"T={t}" for t in images.TEMPERATURES], 4.2)
    ax.set_title("the same draws at each temperature", fontsize=9)
    temperatures_png = common.save(fig, out_dir, f"{NAME}_temperatures")
  finally:
    shutil.rmtree(runs, ignore_errors=True)

  fig, axes = common.figure(columns=len(depths), width=3.4, height=2.6)
  colors = {1: "tab:red", 4: "tab:orange", 8: "tab:blue"}
  for ax, (stages, r) in zip(axes[0], results.items()):
    for res in sorted(set(r["resolutions"])):
      index = [g for g, rg in enumerate(r["resolutions"]) if rg == res]
      ax.bar(index, [r["group_kls"][g] for g in index], color=colors[res], label=f"{res}x{res}")
    ax.set_xticks(range(r["groups"]))
    ax.legend(fontsize=7, title="resolution", title_fontsize=7)
    ax.set_xlabel("group (0 = top)")
    ax.set_title(f"{_stages(stages)}, G = {r['groups']}", fontsize=9)
  axes[0, 0].set_ylabel("test KL of the group (nats)")
  kl_png = common.save(fig, out_dir, f"{NAME}_group_kl")
  fig, axes = common.figure(width=4.6, height=3.2)
  for stages, r in results.items():
    axes[0, 0].plot(ks, [r["gap"][k] for k in ks], "o-",
                    label=f"{_stages(stages)}, G = {r['groups']}")
  axes[0, 0].set_xscale("log")
  axes[0, 0].set_xticks(ks, [str(k) for k in ks])
  axes[0, 0].set_xlabel("K (importance samples)")
  axes[0, 0].set_ylabel("log p(x) estimate - ELBO (nats)")
  axes[0, 0].set_title("both from the same K draws", fontsize=9)
  axes[0, 0].legend(fontsize=8)
  gap_png = common.save(fig, out_dir, f"{NAME}_gap")

  k_top = ks[-1]
  gaps = {s: r["gap"][k_top] for s, r in results.items()}
  header = " | ".join(f"K = {k}" for k in ks[1:])
  rows = "\n".join(
      f"| {s} | {r['groups']} | {r['latent_dims']} | {r['parameters']:,} | {r['elbo']:.2f} | "
      + " | ".join(f"{r['log_px'][k]:.2f}" for k in ks[1:])
      + f" | {2 * r['log_px_stderr'][k_top]:.2f} | {gaps[s]:.2f} |"
      for s, r in results.items())
  deep = results[deepest]
  ordered = [gaps[s] for s in depths]
  trend = ("grows with every stage added" if all(a < b for a, b in zip(ordered, ordered[1:]))
           else "does not grow steadily with depth here")
  best = max(results, key=lambda s: results[s]["log_px"][k_top])
  within = [str(s) for s in depths if s != best and results[best]["log_px"][k_top]
            - results[s]["log_px"][k_top] < 2 * results[best]["log_px_stderr"][k_top]]
  ranking = f"The {best}-stage hierarchy has the highest log p(x) at K = {k_top}" + (
      f", within the +- of the {' and '.join(within)}-stage one{'s' if len(within) > 1 else ''}"
      if within else "") + "."
  rises = {s: r["log_px"][k_top] - r["log_px"][ks[-2]] for s, r in results.items()}
  kls = np.array(deep["group_kls"])
  informative = int(np.sum(kls > 0.1 * kls.max()))
  unused = [g for g, kl in enumerate(kls) if kl < 0.01]
  collapsed = ""
  if unused:
    collapsed = (f" Groups {', '.join(map(str, unused))} carry less than 0.01 nats each: their "
                 f"posterior is their prior, and they say nothing about the digit (collapsed).")
  if unused and unused == list(range(len(unused))):
    last = max(i for i, n in enumerate(counts) if n <= len(unused))  # column 1 + i: n = counts[i]
    change = np.abs(group_cells[:, 1 + last] - group_cells[:, 1]).max()
    collapsed += (f" They are the top ones: in the reconstructions below, the column n = "
                  f"{counts[last]} differs from n = 0 by at most {change:.3f} in any pixel (gray "
                  f"levels 0 to 1).")
  by_resolution = {res: kls[np.array(deep["resolutions"]) == res].sum()
                   for res in sorted(set(deep["resolutions"]))}
  common.write_page(out_dir, NAME, f"""
# 9. Deep hierarchies of latent groups

*Generated by `docs/tutorials/deep_hierarchies.py` (`python -m docs.build`); every number below is
its output.*

A very deep VAE (`model.kind='vdvae'`, after Child, 2021) replaces the one latent vector of a VAE
by G groups `z_0, ..., z_(G-1)`, one in each block of a top-down decoder that starts at a low
resolution (1x1 in the published models) and upsamples to the image: `p(z) = p(z_0) p(z_1 | z_0) ... p(z_(G-1) | z_<(G-1))`. This page
trains hierarchies cut from `configs/digits_vdvae.py` to {', '.join(map(str, depths))} resolution
stages (the deepest: {deep['groups']} groups over resolutions
{', '.join(map(str, sorted(set(deep['resolutions']))))}, {deep['latent_dims']} latent dimensions in
all), each for {num_steps} steps, and looks at what the groups hold and how far the ELBO is from
log p(x).

## Why top-down inference

A hierarchy can be inferred bottom-up, `q(z_1 | x) q(z_2 | z_1) ...` (the IWAE paper's two-layer
model, `model.kind='hvae'` with `inference='bottom_up'`): then q walks from the data to the top
while p walks from the top to the data, and each group's posterior is computed from information
that its prior never sees. Such stacks train badly past two or three layers: the upper layers'
KL falls to zero and they are left unused. The Ladder VAE (Sønderby et al., 2016) turned inference
around: q visits the groups in the generative order, `q(z | x) = prod_g q(z_g | z_<g, x)`, so the
posterior of each group is conditioned on the groups above it exactly as its prior is. IAF-VAE
(Kingma et al., 2016), NVAE (Vahdat & Kautz, 2020) and VDVAE (Child, 2021) share the decoder's
state between the two: one bottom-up pass of the encoder summarizes x at every resolution, and
each top-down block reads the decoder state `h` (a function of the groups above) for its prior and
`h` next to the encoder's activation for its posterior, then adds the sample back into `h`:

{common.listing(vdvae.TopDownBlock)}

The posterior only has to say how x moves each group away from its prior, the KL of each group is
between two Gaussians computed from the same state, and in training the generative path is the
one the posterior samples run through. With residual blocks whose last layers start near zero
(scaled by `sqrt(1 / number of blocks)`), the network starts close to the identity however deep
it is, and dozens of groups train together.

## The runs

{common.listing(experiment)}

| stages | groups G | latent dims | parameters | ELBO | {header} | +- (K = {k_top}) | log p(x) - ELBO |
| --- | --- | --- | --- | --- | {' | '.join('---' for _ in ks[1:])} | --- | --- |
{rows}

(nats per test digit, 300 test digits; +- is two standard errors over the digits of the K =
{k_top} estimate.) {ranking}

## What the groups encode

Each group's share of the KL term says how much of a digit it carries. On the test digits the
{deep['groups']}-group hierarchy's KL of {kls.sum():.2f} nats splits into
{', '.join(f'{v:.2f} at {res}x{res}' for res, v in by_resolution.items())}, and {informative} of
its {deep['groups']} groups carry at least a tenth of the largest group's KL.{collapsed}

{common.listing(group_kls)}

![per-group KL of each hierarchy]({kl_png})

The trainer draws, for a model with capability `LATENT_GROUPS`, test digits (column x) next to
reconstructions that take the top n groups from the posterior (at q's means) and draw the other
groups from the prior (`jaxvae.runtime.images.group_reconstructions`; `jaxvae sample
--kind=groups`). Column n = 0 is a sample from the prior, column n = {deep['groups']} the
reconstruction with every group at q's mean (VDVAE's Figure 4):

![reconstructions from the top n groups]({groups_png})

and samples at temperatures T, the prior's noise of every group scaled by T
(`images.temperature_samples`; `jaxvae sample --kind=temperatures`): T = 1 draws from the model
itself, and a lower T moves every group toward its prior's mean given the groups above:

![samples at temperatures]({temperatures_png})

## The gap between the ELBO and log p(x)

The ELBO is the K = 1 bound; the evaluator's importance-sampled estimate with K samples of every
group tightens toward log p(x) as K grows (`eval.nested_num_samples`: every K from one pass of the
same samples). The difference is what q(z | x) costs:

![log p(x) estimate minus the ELBO against K]({gap_png})

At K = {k_top} the gap is {', '.join(f'{gaps[s]:.2f} nats for {_stages(s)}' for s in depths)}:
it {trend}. Each group's posterior is a diagonal Gaussian only given the groups above, the ELBO
pays for every group's mismatch with the true posterior, and importance sampling recovers part of
it. From K = {ks[-2]} to K = {k_top} the estimate moves by
{', '.join(f'{rises[s]:+.2f} nats for {_stages(s)}' for s in depths)}; it reaches log p(x) only as
K grows without bound, and until then it is a lower bound too (in expectation). Compare
hierarchies of different depth by the importance-sampled estimate at large K, never by the ELBO
alone.

To reproduce the deepest run from the command line:

```bash
jaxvae train --config=configs/digits_vdvae.py --workdir=runs/digits_vdvae \\
    --config.train.num_steps={num_steps}
jaxvae eval --workdir=runs/digits_vdvae --num_samples={','.join(map(str, ks))}
jaxvae sample --workdir=runs/digits_vdvae --kind=groups --num=8
jaxvae sample --workdir=runs/digits_vdvae --kind=temperatures --num=8
```
""")
  return {"num_steps": num_steps, "ks": ks, "results": results, "gaps": gaps,
          "counts": counts, "kl_by_resolution": by_resolution}
