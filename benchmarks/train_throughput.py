"""Training throughput of the trainer's step path against a minimal JAX loop and a PyTorch loop.

    .venv/bin/python -m benchmarks.train_throughput [--quick] [--no-write]

Each model on synthetic binary data of its image shape (Bernoulli(0.3) pixels, a pool of batches
cycled by all loops), one ELBO sample per example, Adam at 1e-3:
  - the default digits VAE (8 x 8, MLP 64-256-256-8, batch 100): small and dispatch-bound;
  - the IWAE paper's one-stochastic-layer MNIST MLP: 784-200-200-50 (tanh), batch 128;
  - the 784-500-20 MLP (one hidden layer of 500, 20 latents; tanh), batch 128;
  - a convolutional VAE on 28 x 28 (the ResNet encoder/decoder, channels 32-64), batch 128;
  - a VQ-VAE on 28 x 28 (the same ResNet, a 7 x 7 grid of 32-dim vectors, 256 codes with EMA
    updates), batch 128.
Loops, side by side in one invocation:
  - jaxvae: the trainer's own pieces (`loop._chunks` -> `data.prefetch_to_device` ->
    `loop.compile_steps`: the jitted, donated `state.train_steps` over `train.steps_per_call` steps
    per call, with skip test, metrics and grad norms; on the CPU, one step per call for the conv
    models, see `loop.convolves_on_cpu`), on one device;
  - minimal JAX: one jitted step per call as in the Flax VAE example (`flax.training.train_state`,
    optax.adam, a NumPy batch per call), on the same `model.log_weights`;
  - PyTorch (MLPs, CPU hosts, if installed: `pip install -e .[benchmark]`): the same networks in
    `torch.nn`, eager.
Each loop runs `steps` steps per repeat; we report the median examples/s and the +- half range over
repeats, the ratio to the minimal JAX loop, the step time, and the achieved FLOP/s (XLA's cost
analysis of one jitted step) over the device's float32 matmul peak (timed in the same run).

On a CPU host the process is pinned to one core with one XLA and one torch thread
(`common.configure_host`): this machine's cores are shared with other jobs, and multi-threaded
steps that spin-wait for busy cores measure the contention, not the loop.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from jaxvae import losses
from jaxvae.config import get_config
from jaxvae.data import prefetch_to_device
from jaxvae.models import build_model
from jaxvae.models.interface import LOSSES, METRICS
from jaxvae.train import loop
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime.trained import init_variables, split_variables
from jaxvae.train import state as state_lib

NAME = "trainer"


@dataclasses.dataclass(frozen=True)
class Model:
  name: str
  image_shape: tuple[int, ...]
  batch: int
  hidden_sizes: tuple[int, ...]
  latent_dim: int  # the VQ-VAE's code size (model.code_dim)
  network: str = "mlp"
  work: int = 1  # Relative cost of a step: repeats run `steps // work` steps.
  model_keys: tuple = ()  # Other `config.model` values: (name, value) pairs.


MODELS = (
    Model("digits VAE 64-256-256-8 (default)", (8, 8, 1), 100, (256, 256), 8),
    Model("IWAE MNIST MLP 784-200-200-50", (28, 28, 1), 128, (200, 200), 50),
    Model("MLP 784-500-20", (28, 28, 1), 128, (500,), 20),
    Model("conv VAE 28x28, ResNet 32-64", (28, 28, 1), 128, (256,), 20, "resnet", work=10),
    Model("VQ-VAE 28x28, ResNet 32-64, 256 codes", (28, 28, 1), 128, (256,), 32, "resnet",
          work=10, model_keys=(("kind", "vqvae"), ("num_codes", 256), ("activation", "relu"))),
)


def _config(spec: Model, steps_per_call: int):
  keys = dict(spec.model_keys)
  config = get_config(model=keys.pop("kind", "vae"))
  if config.model.kind == "vqvae":  # conv only: its code size is model.code_dim
    config.model.code_dim = spec.latent_dim
  else:
    config.model.network = spec.network
    config.model.hidden_sizes, config.model.latent_dim = spec.hidden_sizes, spec.latent_dim
  config.model.update(keys)
  config.train.batch_size, config.train.learning_rate = spec.batch, 1e-3
  config.train.steps_per_call = config.train.log_every = config.train.checkpoint_every = (
      steps_per_call)
  return config


def _pool(spec: Model, num: int) -> list[dict]:
  rng = np.random.default_rng(0)
  return [{"image": (rng.random((spec.batch,) + spec.image_shape) < 0.3).astype(np.float32)}
          for _ in range(num)]


def jaxvae_loop(config, pool):
  """The trainer's path: stacked chunks, prefetched to the device, `steps_per_call` per call."""
  image_shape = pool[0]["image"].shape[1:]
  model = build_model(config.model, image_shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  mesh = mesh_lib.make_mesh(1)
  init = lambda key: state_lib.init_state(model, optimizer, image_shape, key)  # noqa: E731
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  state = jax.jit(init, out_shardings=mesh_lib.state_shardings(abstract_state, mesh))(
      jax.random.key(0))
  steps_fn, steps_per_call, _ = loop.compile_steps(model, optimizer, schedule, config.train,
                                                   abstract_state, pool[0], mesh, 0)
  holder = {"state": state}

  def run(steps: int) -> None:
    config.train.num_steps = steps
    sizes = list(loop.chunk_sizes(0, config.train, steps_per_call))
    batches = (pool[i % len(pool)] for i in range(steps))
    chunks = prefetch_to_device(loop._chunks(batches, iter(sizes)),
                                mesh_lib.stacked_batch_sharding(mesh))
    state = holder["state"]
    for chunk in chunks:
      state, metrics = steps_fn(state, chunk)
    jax.block_until_ready(state)
    holder["state"] = state

  return run


def _minimal_step(config, pool):
  """The Flax VAE example's train step `(state, images, key) -> state` (not jitted) and its initial
  state: a `flax.training.train_state.TrainState` and the model's state collections (the VQ-VAE's
  codebook statistics; `{}` for the others)."""
  from flax.training import train_state

  image_shape = pool[0]["image"].shape[1:]
  model = build_model(config.model, image_shape)
  params, model_state = split_variables(init_variables(model, image_shape, jax.random.key(0)))
  state = (train_state.TrainState.create(apply_fn=model.apply, params=params,
                                         tx=optax.adam(config.train.learning_rate)), model_state)

  def train_step(state, batch, z_rng):
    state, model_state = state

    def loss_fn(params):  # The VQ-VAE adds its commitment loss and updates its codebook itself.
      keys = jax.random.split(z_rng, (1, batch.shape[0]))
      log_weights, written = model.apply({"params": params, **model_state}, batch, keys,
                                         method=model.log_weights,
                                         mutable=[*model_state, METRICS, LOSSES])
      penalty = sum(jnp.mean(t) for t in jax.tree.leaves(written.get(LOSSES, {})))
      return -jnp.mean(losses.elbo(log_weights.values)) + penalty, written
    grads, written = jax.grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), {name: written[name] for name in model_state}

  return state, train_step


def minimal_loop(config, pool):
  """One jitted step per call, as in the Flax VAE example."""
  state, train_step = _minimal_step(config, pool)
  train_step = jax.jit(train_step)
  holder = {"state": state, "rng": jax.random.key(1)}

  def run(steps: int) -> None:
    state, rng = holder["state"], holder["rng"]
    for i in range(steps):
      rng, key = jax.random.split(rng)
      state = train_step(state, pool[i % len(pool)]["image"], key)
    jax.block_until_ready(state)
    holder.update(state=state, rng=rng)

  return run, train_step, (state, pool[0]["image"], jax.random.key(0))


def scanned_minimal_loop(config, pool):
  """The minimal loop's step, `train.steps_per_call` of them per call in a `lax.scan` over batches
  already on the device: what removing the per-step dispatch alone can gain (no metrics, no skip
  test, no transfers)."""
  state, train_step = _minimal_step(config, pool)
  per_call = config.train.steps_per_call

  @jax.jit
  def train_steps(state, images, rng):
    step = lambda state, inputs: (train_step(state, *inputs), None)  # noqa: E731
    return jax.lax.scan(step, state, (images, jax.random.split(rng, per_call)))[0]

  images = jax.device_put(np.stack([pool[i % len(pool)]["image"] for i in range(per_call)]))
  holder = {"state": state, "rng": jax.random.key(1)}

  def run(steps: int) -> None:
    state, rng = holder["state"], holder["rng"]
    for _ in range(steps // per_call):
      rng, key = jax.random.split(rng)
      state = train_steps(state, images, key)
    jax.block_until_ready(state)
    holder.update(state=state, rng=rng)

  return run


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

  batch, dims = pool[0]["image"].shape[0], int(np.prod(pool[0]["image"].shape[1:]))
  encoder = mlp([dims, *hidden_sizes, 2 * latent_dim])
  decoder = mlp([latent_dim, *reversed(hidden_sizes), dims])
  parameters = list(encoder.parameters()) + list(decoder.parameters())
  optimizer = torch.optim.Adam(parameters, lr=1e-3)
  data = [torch.from_numpy(b["image"].reshape(batch, dims)) for b in pool]
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


def _measure(spec: Model, steps: int, repeats: int, steps_per_call: int, peaks: list) -> dict:
  """Interleaved repeats of every loop on `spec` (drifts in machine load hit all loops alike)."""
  config, pool = _config(spec, steps_per_call), _pool(spec, 16)
  minimal, one_step, example = minimal_loop(config, pool)
  flops_per_step = one_step.lower(*example).compile().cost_analysis()["flops"]
  loops = {"jaxvae trainer": jaxvae_loop(config, pool), "minimal JAX loop": minimal}
  if spec.network == "mlp" or jax.default_backend() != "cpu":  # XLA:CPU: convs in loops are slow
    assert steps % steps_per_call == 0, (steps, steps_per_call)
    loops["minimal step in lax.scan"] = scanned_minimal_loop(config, pool)
  if spec.network == "mlp" and jax.default_backend() == "cpu":
    torch_run = torch_loop(spec.hidden_sizes, spec.latent_dim, pool)
    if torch_run is not None:
      loops["PyTorch CPU"] = torch_run[0]
  for fn in loops.values():
    fn(steps_per_call)  # Compile / warm up.
  timings = {label: [] for label in loops}
  for _ in range(repeats):
    peaks.append(common.matmul_peak_flops(1024 if steps < 100 else 2048, repeats=2))
    for label, fn in loops.items():
      timings[label].append(common.repeat_timing(lambda: fn(steps), 1, warmup=0)["median"])
  entry = {"flops_per_step": flops_per_step, "steps": steps, "batch": spec.batch, "loops": {}}
  for label, seconds in timings.items():
    median = float(np.median(seconds))
    entry["loops"][label] = {
        "examples_per_sec": steps * spec.batch / median, "step_ms": 1e3 * median / steps,
        "spread": (max(seconds) - min(seconds)) / 2 / median,
        "flops_per_sec": flops_per_step * steps / median}
  base = entry["loops"]["minimal JAX loop"]["examples_per_sec"]
  for s in entry["loops"].values():
    s["ratio_to_minimal"] = s["examples_per_sec"] / base
  return entry


def run(quick: bool = False) -> tuple[str, dict]:
  steps, repeats, steps_per_call = (20, 2, 10) if quick else (200, 7, 50)
  torch_version = "not installed"
  try:
    import torch
    torch_version = f"torch {torch.__version__}, 1 thread"
  except ImportError:
    pass
  peaks = []  # Measured between the rounds too; the highest is the machine's (load varies).
  models = {spec.name: _measure(spec, max(steps // spec.work, 2), repeats, steps_per_call, peaks)
            for spec in MODELS}
  peak = max(peaks)
  rows = []
  for name, entry in models.items():
    for label, s in entry["loops"].items():
      s["flops_fraction_of_peak"] = s["flops_per_sec"] / peak
      rows.append(f"| {name} | {label} | {s['examples_per_sec']:,.0f} (+-{100 * s['spread']:.0f}%) "
                  f"| {s['step_ms']:.2f} | {s['ratio_to_minimal']:.2f}x "
                  f"| {100 * s['flops_fraction_of_peak']:.0f}% |")
  info = common.machine()
  gpu = info["platform"] == "gpu"
  record = {"models": models, "machine": info, "peak_flops": peak, "repeats": repeats,
            "steps_per_call": steps_per_call, "torch": torch_version}
  command = ".venv/bin/python -m benchmarks.train_throughput" + (" --quick" if quick else "")
  host = (f"{info['devices']}" if gpu else
          f"{info['cpu']} (one core of {info['cores']}, shared with other work); {torch_version}")
  markdown = "\n".join([
      "## Trainer",
      "",
      f"Training throughput on synthetic binary data, one ELBO sample, Adam. Measured (this "
      f"section alone: `{command}`) on {info['date']}: {host}, jax {info['jax']}. {repeats} interleaved repeats "
      f"of {steps} steps per loop ({max(steps // 10, 2)} for the conv models); the trainer runs "
      f"`train.steps_per_call={steps_per_call}`. The peak is a float32 matmul timed in the same "
      f"run, the best of one per round ({peak:.2e} FLOP/s); a step's FLOPs are XLA's cost analysis "
      "of the minimal loop's step (forward + backward + Adam), so \"of matmul peak\" is the model "
      "FLOP utilization.",
      "",
      "| model | loop | examples/s (median, +- half range) | ms/step | vs minimal JAX "
      "| of matmul peak |",
      "| --- | --- | --- | --- | --- | --- |",
      *rows,
      "",
      "Roofline: no loop can beat the minimal one by more than the matmul peak over the minimal "
      "loop's FLOP rate: " + "; ".join(
          f"{name} {1 / entry['loops']['minimal JAX loop']['flops_fraction_of_peak']:.1f}x"
          for name, entry in models.items()) + ".",
      "",
      ("Absolute times are from the GPU named above." if gpu else
       "Absolute times on this shared CPU are indicative only; the ratios are the figures. The "
       "trainer's step also computes the skip test and the metrics, which the minimal loop does "
       "not. Running `steps_per_call` steps per device call removes the per-step dispatch, which "
       "pays most where steps are short (the digits VAE). \"minimal step in lax.scan\" is the "
       "minimal loop's own step with the dispatch removed and the batches already on the device: "
       "the most that any loop structure can gain over the minimal loop on that model. The "
       "MNIST-sized models on one CPU core are bound by their matmuls, so that gain is small there. "
       "The conv models run one step per call on the CPU (jax#12868), hence no scanned row."),
  ])
  return markdown, record


if __name__ == "__main__":
  common.main(NAME, run)
