"""Training throughput of the trainer's step path against a minimal JAX loop and a PyTorch loop.

    .venv/bin/python -m benchmarks.train_throughput [--quick] [--no-write]

Two models at batch 128 on the same synthetic binary data (28 x 28, Bernoulli(0.3) pixels, a pool
of batches cycled by all loops), one ELBO sample per example, Adam at 1e-3:
  - the IWAE paper's one-stochastic-layer MNIST MLP: 784-200-200-50 (tanh) and its mirror;
  - the 784-500-20 MLP (one hidden layer of 500, 20 latents; tanh).
Loops, side by side in one invocation:
  - jaxvae: the trainer's own pieces (`loop._chunks` -> `data.prefetch_to_device` -> the jitted,
    donated `state.train_steps` over `train.steps_per_call` steps per call, with skip test,
    metrics and grad norms), on one device;
  - minimal JAX: one jitted step per call as in the Flax VAE example (`flax.training.train_state`,
    optax.adam, a NumPy batch per call), on the same `model.log_weights`;
  - PyTorch (if installed: `pip install -e .[benchmark]`): the same networks in `torch.nn`, eager, CPU.
Each loop runs `steps` steps per repeat; we report the median examples/s and the +- half range over
repeats, the ratio to the minimal JAX loop, and the achieved FLOP/s (XLA's cost analysis of one
jitted step) over the machine's float32 matmul peak (a 2048^2 `jnp.dot` timed in the same run).

The process is pinned to one core (`os.sched_setaffinity`), XLA is asked for one intra-op thread and
torch for one thread, and the peak is measured on the same core: this machine's cores are shared
with other jobs, and multi-threaded steps that spin-wait for busy cores measure the contention, not
the loop.
"""

import argparse
import os

if __name__ == "__main__":  # One core for every loop; set before JAX starts (see the docstring).
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                             " intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import common  # noqa: E402
from jaxvae import losses  # noqa: E402
from jaxvae.config import get_config  # noqa: E402
from jaxvae.data import prefetch_to_device  # noqa: E402
from jaxvae.models import build_model  # noqa: E402
from jaxvae.train import loop  # noqa: E402
from jaxvae.train import mesh as mesh_lib  # noqa: E402
from jaxvae.train import state as state_lib  # noqa: E402

NAME = "trainer"
IMAGE_SHAPE = (28, 28, 1)
BATCH = 128
MODELS = {"IWAE MNIST MLP 784-200-200-50": ((200, 200), 50), "MLP 784-500-20": ((500,), 20)}


def _config(hidden_sizes, latent_dim, steps_per_call: int):
  config = get_config()
  config.model.hidden_sizes, config.model.latent_dim = hidden_sizes, latent_dim
  config.train.batch_size, config.train.learning_rate = BATCH, 1e-3
  config.train.steps_per_call = config.train.log_every = config.train.checkpoint_every = (
      steps_per_call)
  return config


def _pool(num: int) -> list[dict]:
  rng = np.random.default_rng(0)
  return [{"image": (rng.random((BATCH,) + IMAGE_SHAPE) < 0.3).astype(np.float32)}
          for _ in range(num)]


def jaxvae_loop(config, pool):
  """The trainer's path: stacked chunks, prefetched to the device, `steps_per_call` per call."""
  model = build_model(config.model, IMAGE_SHAPE)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  mesh = mesh_lib.make_mesh(1)
  init = lambda key: state_lib.init_state(model, optimizer, IMAGE_SHAPE, key)  # noqa: E731
  sharding = mesh_lib.state_shardings(jax.eval_shape(init, jax.random.key(0)), mesh)
  state = jax.jit(init, out_shardings=sharding)(jax.random.key(0))
  steps_fn = jax.jit(state_lib.make_train_step(model, optimizer, schedule, config.train,
                                               steps_per_call=True),
                     in_shardings=(sharding, mesh_lib.stacked_batch_sharding(mesh),
                                   mesh_lib.replicated(mesh)),
                     out_shardings=(sharding, mesh_lib.replicated(mesh)), donate_argnums=0)
  holder = {"state": state}
  length = loop.chunk_length(config.train)

  def run(steps: int) -> None:
    config.train.num_steps = steps
    sizes = list(loop.chunk_sizes(0, config.train))
    batches = (pool[i % len(pool)] for i in range(steps))
    chunks = prefetch_to_device(loop._chunks(batches, iter(sizes), length),
                                mesh_lib.stacked_batch_sharding(mesh))
    state = holder["state"]
    for size, chunk in zip(sizes, chunks):
      state, metrics = steps_fn(state, chunk, np.int32(size))
    jax.block_until_ready(state)
    holder["state"] = state

  return run


def minimal_loop(config, pool):
  """One jitted step per call, as in the Flax VAE example."""
  from flax.training import train_state

  model = build_model(config.model, IMAGE_SHAPE)
  params = state_lib.init_params(model, IMAGE_SHAPE, jax.random.key(0))
  state = train_state.TrainState.create(apply_fn=model.apply, params=params,
                                        tx=optax.adam(config.train.learning_rate))

  @jax.jit
  def train_step(state, batch, z_rng):
    def loss_fn(params):
      keys = jax.random.split(z_rng, (1, batch.shape[0]))
      log_weights = model.apply({"params": params}, batch, keys, method=model.log_weights)
      return -jnp.mean(losses.elbo(log_weights.values))
    return state.apply_gradients(grads=jax.grad(loss_fn)(state.params))

  holder = {"state": state, "rng": jax.random.key(1)}

  def run(steps: int) -> None:
    state, rng = holder["state"], holder["rng"]
    for i in range(steps):
      rng, key = jax.random.split(rng)
      state = train_step(state, pool[i % len(pool)]["image"], key)
    jax.block_until_ready(state)
    holder.update(state=state, rng=rng)

  return run, train_step, (state, pool[0]["image"], jax.random.key(0))


def torch_loop(hidden_sizes, latent_dim, pool):
  """The same VAE in eager PyTorch on the CPU, or None if torch is not installed."""
  try:
    import torch
  except ImportError:
    return None
  torch.manual_seed(0)
  torch.set_num_threads(1)

  def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
      layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-2], sizes[-1]))

  dims = int(np.prod(IMAGE_SHAPE))
  encoder = mlp([dims, *hidden_sizes, 2 * latent_dim])
  decoder = mlp([latent_dim, *reversed(hidden_sizes), dims])
  parameters = list(encoder.parameters()) + list(decoder.parameters())
  optimizer = torch.optim.Adam(parameters, lr=1e-3)
  data = [torch.from_numpy(b["image"].reshape(BATCH, dims)) for b in pool]
  log_2pi = float(np.log(2 * np.pi))

  def step(x):
    mean, log_var = encoder(x).chunk(2, dim=-1)
    eps = torch.randn_like(mean)
    z = mean + torch.exp(0.5 * log_var) * eps
    logits = decoder(z)
    log_likelihood = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x, reduction="none").sum(-1)
    log_prior = -0.5 * (z ** 2 + log_2pi).sum(-1)
    log_posterior = -0.5 * (eps ** 2 + log_var + log_2pi).sum(-1)
    loss = -(log_likelihood + log_prior - log_posterior).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()

  def run(steps: int) -> None:
    for i in range(steps):
      step(data[i % len(data)])

  return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def run(quick: bool = False) -> tuple[str, dict]:
  steps, repeats, steps_per_call = (40, 2, 20) if quick else (200, 7, 50)
  pool = _pool(16)
  peaks = []  # Measured between the rounds too; the highest is the machine's (load varies).
  rows, record, torch_version = [], {"models": {}}, "not installed"
  for name, (hidden_sizes, latent_dim) in MODELS.items():
    config = _config(hidden_sizes, latent_dim, steps_per_call)
    minimal, one_step, example = minimal_loop(config, pool)
    flops_per_step = one_step.lower(*example).compile().cost_analysis()["flops"]
    loops = {"jaxvae trainer": jaxvae_loop(config, pool), "minimal JAX loop": minimal}
    torch_run = torch_loop(hidden_sizes, latent_dim, pool)
    if torch_run is not None:
      loops["PyTorch CPU"], torch_version = torch_run
    timings = {}
    for label, fn in loops.items():  # Interleaved repeats: drifts in machine load hit all alike.
      fn(steps_per_call)  # Compile / warm up.
    for _ in range(repeats):
      peaks.append(common.matmul_peak_flops(1024 if quick else 2048, repeats=2))
      for label, fn in loops.items():
        timings.setdefault(label, []).append(common.repeat_timing(lambda: fn(steps), 1, warmup=0))
    summary = {}
    for label, times in timings.items():
      seconds = sorted(t["median"] for t in times)
      median = float(np.median(seconds))
      summary[label] = {"examples_per_sec": steps * BATCH / median,
                        "spread": (seconds[-1] - seconds[0]) / 2 / median,
                        "flops_per_sec": flops_per_step * steps / median}
    base = summary["minimal JAX loop"]["examples_per_sec"]
    for label, s in summary.items():
      s["ratio_to_minimal"] = s["examples_per_sec"] / base
    record["models"][name] = {"flops_per_step": flops_per_step, **summary}
  peak = max(peaks)
  for name in record["models"]:
    for label, s in record["models"][name].items():
      if isinstance(s, dict):
        s["flops_fraction_of_peak"] = s["flops_per_sec"] / peak
  rows = []
  for name, entry in record["models"].items():
    for label, s in entry.items():
      if isinstance(s, dict):
        rows.append(f"| {name} | {label} | {s['examples_per_sec']:,.0f} (+-{100 * s['spread']:.0f}%) "
                    f"| {s['ratio_to_minimal']:.2f}x | {100 * s['flops_fraction_of_peak']:.0f}% |")
  info = common.machine()
  record.update(machine=info, peak_flops=peak, steps=steps, repeats=repeats,
                steps_per_call=steps_per_call, batch=BATCH, torch=torch_version)
  command = ".venv/bin/python -m benchmarks.train_throughput" + (" --quick" if quick else "")
  markdown = "\n".join([
      "## Trainer",
      "",
      f"Training throughput at batch {BATCH} on synthetic binary 28 x 28 data, one ELBO sample, "
      f"Adam. Measured with `{command}` on {info['date']}: {info['cpu']} ({info['cores']} cores, "
      f"shared with other work), {info['devices']}, jax {info['jax']}; {torch_version}. "
      f"{repeats} interleaved repeats of {steps} steps per loop; the trainer runs "
      f"`train.steps_per_call={steps_per_call}`. The peak is a float32 matmul timed in the same "
      f"run, the best of one per round ({peak:.2e} FLOP/s); a step's FLOPs are XLA's cost analysis of the minimal loop's "
      f"step (forward + backward + Adam).",
      "",
      "| model | loop | examples/s (median, +- half range) | vs minimal JAX | of matmul peak |",
      "| --- | --- | --- | --- | --- |",
      *rows,
      "",
      "The process is pinned to one core (the peak is measured on it too; torch uses one thread): "
      "the cores are shared with other jobs, so figures move by the spread shown between runs. "
      "The trainer's step also computes the skip test, metrics and gradient/parameter norms, which "
      "the minimal loop does not.",
  ])
  return markdown, record


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Few steps, to check the harness.")
  parser.add_argument("--no-write", action="store_true", help="Print only; leave BENCHMARKS.md.")
  args = parser.parse_args()
  markdown, record = run(args.quick)
  if not args.no_write:
    common.write_section(NAME, markdown, record)
  print(markdown)


if __name__ == "__main__":
  main()
