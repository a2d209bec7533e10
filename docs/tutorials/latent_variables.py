"""Tutorial 1: why latent variables. Bimodal 1-D data, the best single Gaussian, and a model with a
discrete latent z in {0, 1} trained by the ELBO (the seeds' toy, `jaxvae.models.toy`)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from docs.tutorials import common
from jaxvae.data.toy import MEANS, SCALE, toy_arrays, toy_log_density
from jaxvae.models.toy import ToyModel
from jaxvae.models.toy_plot import toy_curves

NAME = "latent_variables"


def gaussian_fit(x: np.ndarray) -> tuple[float, float]:
  """The maximum-likelihood single Gaussian: the data's mean and (biased) standard deviation."""
  return float(np.mean(x)), float(np.std(x))


def gaussian_mass(mean: float, std: float, lo: float, hi: float) -> float:
  """P(lo < x < hi) under N(mean, std^2)."""
  cdf = lambda v: 0.5 * (1 + math.erf((v - mean) / (std * math.sqrt(2))))
  return cdf(hi) - cdf(lo)


def train_toy(x: jax.Array, num_steps: int, snapshot_steps: tuple[int, ...], learning_rate=0.05):
  """Maximizes the exact ELBO sum_z q(z|x) [log p(x, z) - log q(z|x)] (z enumerated) by Adam on
  the whole data set; returns the parameters at `snapshot_steps` and the ELBO and exact log p(x)
  after each step."""
  model = ToyModel()
  params = model.init(jax.random.key(0), x, jax.random.split(jax.random.key(1), (1, len(x))))
  params = params["params"]
  optimizer = optax.adam(learning_rate)

  @jax.jit
  def step(params, opt_state):
    loss = lambda p: -jnp.mean(model.apply({"params": p}, x, method=model.exact_elbo))
    elbo_loss, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    params = optax.apply_updates(params, updates)
    log_px = jnp.mean(model.apply({"params": params}, x, method=model.exact_log_px))
    return params, opt_state, -elbo_loss, log_px

  opt_state, snapshots, history = optimizer.init(params), {0: params}, []
  for i in range(1, num_steps + 1):
    params, opt_state, elbo, log_px = step(params, opt_state)
    history.append((float(elbo), float(log_px)))
    if i in snapshot_steps:
      snapshots[i] = params
  return model, snapshots, np.array(history)


def run(out_dir: str, tiny: bool = False) -> dict:
  x_train, _ = toy_arrays("train")
  x_test, _ = toy_arrays("test")
  gap = (MEANS[0] + 2 * SCALE, MEANS[1] - 2 * SCALE)  # between the modes, 2 sigma from each
  mean, std = gaussian_fit(x_train)
  numbers = {
      "mean": mean, "std": std,
      "gaussian_gap_mass": gaussian_mass(mean, std, *gap),
      "data_gap_fraction": float(np.mean((x_train > gap[0]) & (x_train < gap[1]))),
      "gaussian_test_log_px": float(np.mean(
          -0.5 * ((x_test - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi)))),
      "true_test_log_px": float(np.mean(toy_log_density(x_test))),
  }
  num_steps = 20 if tiny else 400
  snapshot_steps = (5, 20) if tiny else (25, 100, 400)
  model, snapshots, history = train_toy(jnp.asarray(x_train), num_steps, snapshot_steps)
  final = snapshots[num_steps]
  numbers["toy_test_log_px"] = float(jnp.mean(model.apply(
      {"params": final}, jnp.asarray(x_test), method=model.exact_log_px)))
  numbers["toy_test_elbo"] = float(jnp.mean(model.apply(
      {"params": final}, jnp.asarray(x_test), method=model.exact_elbo)))
  numbers["num_steps"] = num_steps

  # Figure 1: the data and the best single Gaussian.
  grid = np.linspace(x_train.min() - 1, x_train.max() + 1, 400)
  fig, axes = common.figure(width=6.0)
  ax = axes[0, 0]
  ax.hist(x_train[:, 0], bins=60, density=True, color="0.75", label="data")
  ax.plot(grid, np.exp(toy_log_density(grid)), "k", label="true density")
  ax.plot(grid, np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)),
          "C3", label=f"best Gaussian N({mean:.2f}, {std:.2f}^2)")
  ax.axvspan(*gap, color="C3", alpha=0.1, label="the gap between the modes")
  ax.legend(fontsize=8)
  gaussian_png = common.save(fig, out_dir, f"{NAME}_gaussian")

  # Figure 2: p(x), p(z) p(x|z) and q(z=1|x) over training.
  steps = sorted(snapshots)
  fig, axes = common.figure(columns=len(steps), rows=2, width=3.4, height=2.6)
  for column, step in enumerate(steps):
    curves = toy_curves(model, snapshots[step], grid)
    top, bottom = axes[0, column], axes[1, column]
    top.hist(x_train[:, 0], bins=60, density=True, color="0.8")
    top.plot(grid, curves["p_x"], "k", lw=2.5, label="p(x)")
    top.plot(grid, curves["z0"], "C0", label="p(z=0) p(x|z=0)")
    top.plot(grid, curves["z1"], "C3", label="p(z=1) p(x|z=1)")
    top.set_title(f"step {step}")
    bottom.plot(grid, curves["q"], "C2")
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_xlabel("x")
  axes[0, 0].legend(fontsize=7)
  axes[1, 0].set_ylabel("q(z=1 | x)")
  training_png = common.save(fig, out_dir, f"{NAME}_training")

  fig, axes = common.figure(width=5.0)
  axes[0, 0].plot(np.arange(1, num_steps + 1), history[:, 1], "k", label="exact log p(x)")
  axes[0, 0].plot(np.arange(1, num_steps + 1), history[:, 0], "C0--", label="ELBO")
  axes[0, 0].axhline(numbers["true_test_log_px"], color="0.5", lw=0.8, label="true density (test)")
  axes[0, 0].set_xlabel("step")
  axes[0, 0].set_ylabel("nats per example (train)")
  axes[0, 0].legend(fontsize=8)
  curve_png = common.save(fig, out_dir, f"{NAME}_elbo")

  n = numbers
  common.write_page(out_dir, NAME, f"""
# 1. Why latent variables

*Generated by `docs/tutorials/latent_variables.py` (`python -m docs.build`); every number below is
its output.*

The data: {len(x_train)} points from an equal mixture of N({MEANS[0]}, {SCALE}^2) and
N({MEANS[1]}, {SCALE}^2) (`jaxvae.data.toy`). The best single Gaussian, fitted by maximum
likelihood, is N({n['mean']:.3f}, {n['std']:.3f}^2). It must cover both modes, so it puts its mass
where there are no data: it gives the gap between the modes ({gap[0]:.1f} < x < {gap[1]:.1f})
probability **{n['gaussian_gap_mass']:.3f}**, while only **{n['data_gap_fraction']:.3f}** of the
data fall there. Its test log-likelihood is {n['gaussian_test_log_px']:.3f} nats per point,
against {n['true_test_log_px']:.3f} for the true density.

![the data and the best Gaussian]({gaussian_png})

{common.listing(gaussian_fit, gaussian_mass)}

A latent variable fixes this: z in {{0, 1}} chooses a mode, p(x | z) = N(mu_z, sigma_z^2), and the
marginal p(x) = sum_z p(z) p(x | z) can be bimodal. Inference q(z = 1 | x) = sigmoid(a x + b) is
learned with the generative model by maximizing the ELBO; with two values of z the ELBO is an
exact sum (`ToyModel.exact_elbo`), so the gradient has no sampling noise:

{common.listing(train_toy)}

After {n['num_steps']} steps the model's exact test log p(x) is **{n['toy_test_log_px']:.3f}**
nats (ELBO {n['toy_test_elbo']:.3f}; true density {n['true_test_log_px']:.3f}; single Gaussian
{n['gaussian_test_log_px']:.3f}). Over training, the two components move onto the two modes and
q(z = 1 | x) becomes a step between them:

![p(x), its components and q(z=1|x) over training]({training_png})

The ELBO climbs to log p(x) as q(z | x) approaches the true posterior p(z | x): their gap is
KL(q(z | x) || p(z | x)), tutorial 2's subject.

![ELBO and exact log p(x) over training]({curve_png})

The same model from the command line: `jaxvae train --config=configs/toy.py --workdir=runs/toy`
(its picture: `jaxvae.models.toy_plot.save_toy_plot`).
""")
  return numbers

