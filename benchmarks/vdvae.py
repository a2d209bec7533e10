"""The very deep VAE (`model.kind='vdvae'`, Child 2021): the published configs' sizes, the CIFAR-10
model's compiled memory and step time, and on the digits the deep hierarchy against shallow ones.

    .venv/bin/python -m benchmarks.vdvae [--quick]

Writes the section "vdvae" of BENCHMARKS.md and its record in benchmarks/results.json:
  - the parameters of each configs/*_vdvae.py model, counted abstractly (`jax.eval_shape` of the
    init), against the published counts (openai/vdvae's README);
  - the compiled memory per device (XLA's memory analysis of `.lower(...).compile()`, never run)
    of configs/cifar10_vdvae.py's train step as the trainer jits it (`loop.jit_steps`), batch 32
    over 1 or 8 devices, FSDP and remat on and off (`MEMORY_CASES`), beside the bytes its forward
    pass keeps for the backward one (`jax.vjp`'s residuals, traced abstractly);
  - the trainer's step against a minimal jitted step of the same model (value_and_grad of the
    negative ELBO and an optax.adamw update: no EMA, skip test, clipping or metrics), side by side;
  - configs/digits_vdvae.py against configs/digits_hvae.py and configs/digits_vae.py at equal
    steps: test log p(x) at K = 1000, 3 seeds, paired per seed (`model_quality.train_families`).
On a CPU host the process has 8 forced devices, as benchmarks/scaling.py's.
"""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common, model_quality
from jaxvae import config as config_lib
from jaxvae import losses
from jaxvae.models import build_model
from jaxvae.models.vdvae import parse_blocks
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime.trained import init_variables
from jaxvae.train import loop
from jaxvae.train import state as state_lib

NAME = "vdvae"
CONFIGS = (  # (config file, data shape, published parameters: openai/vdvae's README)
    ("cifar10_vdvae", (32, 32, 3), 39e6),
    ("imagenet32_vdvae", (32, 32, 3), 119e6),
    ("imagenet64_vdvae", (64, 64, 3), 125e6),
    ("ffhq256_vdvae", (256, 256, 3), 115e6),
    ("digits_vdvae", (8, 8, 1), None),
)
CIFAR10 = (32, 32, 3)
BATCH = 32  # configs/cifar10_vdvae.py's batch (VDVAE's: 16 per GPU on 2 GPUs)
# (devices, fsdp_devices, remat) compiled. On one core of the 2-core CPU of BENCHMARKS.md one
# compile of the 76-block step takes 2 (1 device) to 6 (8 devices, FSDP, remat) minutes, and
# XLA:CPU's memory analysis shows no rematerialization (tests/models/test_vdvae.py), so on 8 devices
# only remat off is compiled.
MEMORY_CASES = ((1, 1, False), (1, 1, True), (8, 1, False), (8, 8, False))
DIGITS = (  # (config file, name); the first is the baseline of the paired comparison
    ("digits_hvae", "Ladder VAE, 2 layers z(16)-z(8)"),
    ("digits_vdvae", "VDVAE"),
    ("digits_vae", "VAE, 1 layer z(8)"),
)
# --quick: the smoke variants with these shortest block strings (encoder, decoder) per image size,
# so that the section's check compiles in seconds.
TINY_BLOCKS = {32: ("32d4,8d8,1x1", "1x1,8m1,32m8"), 8: ("8d8,1x1", "1x1,8m1")}
# Keys that `model_quality.train_families` sets for every run (steps, intervals, K).
_RUN_KEYS = {"train.num_steps", "train.log_every", "train.checkpoint_every", "eval.num_samples",
             "eval.chunk_size"}
# The digits VDVAE's evaluation in chunks of 10 samples: a third faster than 500 on this CPU; the
# estimate does not depend on the chunk size (per-sample keys).
_VDVAE_CHUNK = 10


def parameter_count(config, data_shape: tuple[int, ...]) -> int:
  """Parameters of `config.model` on data of `data_shape`, from the abstract init (no compile)."""
  model = build_model(config.model, data_shape)
  params = jax.eval_shape(lambda k: init_variables(model, data_shape, k), jax.random.key(0))
  return sum(math.prod(a.shape) for a in jax.tree.leaves(params["params"]))


def trainer_step(config, data_shape: tuple[int, ...], mesh: jax.sharding.Mesh):
  """The trainer's step on `mesh`, one step per call (as the trainer runs a convolutional model on
  the CPU; on an accelerator it scans `train.steps_per_call` per call): `(jitted step, jitted
  init(key) -> state, abstract state, abstract chunk [1, train.batch_size, *data_shape])`."""
  model = build_model(config.model, data_shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  init = lambda key: state_lib.init_state(model, optimizer, data_shape, key,  # noqa: E731
                                          ema=config.train.ema_decay > 0)
  abstract_state = jax.eval_shape(init, jax.random.key(0))
  step = loop.jit_steps(state_lib.make_train_step(model, optimizer, schedule, config.train,
                                                  chunked=True), abstract_state, mesh)
  init = jax.jit(init, out_shardings=mesh_lib.state_shardings(abstract_state, mesh))
  chunk = {"image": jax.ShapeDtypeStruct((1, config.train.batch_size) + data_shape, jnp.float32)}
  return step, init, abstract_state, chunk


def negative_elbo(model):
  """`(params, images [B, ...], keys [1, B]) -> []`: the batch mean of -ELBO (one sample)."""
  def loss(params, images, keys):
    log_weights = model.apply({"params": params}, images, keys, method=model.log_weights)
    return -jnp.mean(losses.elbo(log_weights.values))
  return loss


def backward_residual_bytes(config, data_shape: tuple[int, ...], batch: int) -> int:
  """Bytes that the forward pass of -ELBO on `batch` examples keeps for the backward pass
  (`jax.vjp`'s residuals, traced abstractly: activations and the weights they meet)."""
  model = build_model(config.model, data_shape)
  params = jax.eval_shape(lambda k: init_variables(model, data_shape, k),
                          jax.random.key(0))["params"]
  keys = jax.random.split(jax.random.key(0), (1, batch))
  residuals = jax.eval_shape(lambda p, x: jax.vjp(lambda q: negative_elbo(model)(q, x, keys), p)[1],
                             params, jax.ShapeDtypeStruct((batch,) + data_shape, jnp.float32))
  return sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(residuals))


def compiled_memory(config, num_devices: int, fsdp_devices: int) -> dict:
  """Bytes per device of the CIFAR-10 train step compiled for `num_devices` (XLA's memory
  analysis) and the seconds of the compile."""
  mesh = mesh_lib.make_mesh(num_devices, fsdp_devices)
  step, _, abstract_state, chunk = trainer_step(config, CIFAR10, mesh)
  start = time.perf_counter()
  compiled = step.lower(abstract_state, chunk).compile()
  analysis = compiled.memory_analysis()
  return {"arguments": int(analysis.argument_size_in_bytes),
          "outputs": int(analysis.output_size_in_bytes),
          "aliased": int(analysis.alias_size_in_bytes),
          "temporaries": int(analysis.temp_size_in_bytes),
          "total": common.memory_bytes(compiled),
          "compile_seconds": round(time.perf_counter() - start, 1)}


def random_images(batch: int, data_shape: tuple[int, ...], seed: int) -> np.ndarray:
  """Random 8-bit images in [0, 1], `[batch, *data_shape]`."""
  return (np.random.default_rng(seed).integers(0, 256, (batch,) + data_shape) / 255).astype(
      np.float32)


def step_times(config, steps: int, repeats: int) -> dict:
  """The trainer's step against a minimal jitted step (value_and_grad of -ELBO, optax.adamw at the
  config's rate, betas and weight decay) on one device, the same model and batches: for each, ms
  per step, examples/s and spread over `repeats` interleaved repeats of `steps` steps, and the
  ratio of their speeds."""
  mesh = mesh_lib.make_mesh(1)
  batch = config.train.batch_size
  pool = [random_images(batch, CIFAR10, seed) for seed in range(4)]
  step, init, _, _ = trainer_step(config, CIFAR10, mesh)
  chunks = [{"image": jax.device_put(images[None], mesh_lib.stacked_batch_sharding(mesh))}
            for images in pool]
  trainer = {"state": init(jax.random.key(0))}

  def run_trainer():
    state = trainer["state"]
    for i in range(steps):
      state, _ = step(state, chunks[i % len(chunks)])
    trainer["state"] = jax.block_until_ready(state)

  model = build_model(config.model, CIFAR10)
  train = config.train
  optimizer = optax.adamw(train.learning_rate, b1=train.adam_b1, b2=train.adam_b2,
                          weight_decay=train.weight_decay)
  loss = negative_elbo(model)

  @jax.jit
  def minimal_step(params, opt_state, images, key):
    value, grads = jax.value_and_grad(loss)(params, images, jax.random.split(key, (1, batch)))
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  params = init_variables(model, CIFAR10, jax.random.key(0))["params"]
  images = [jax.device_put(x) for x in pool]
  minimal = {"state": (params, optimizer.init(params)), "rng": jax.random.key(1)}

  def run_minimal():
    (params, opt_state), rng = minimal["state"], minimal["rng"]
    for i in range(steps):
      rng, key = jax.random.split(rng)
      params, opt_state, _ = minimal_step(params, opt_state, images[i % len(images)], key)
    minimal.update(state=jax.block_until_ready((params, opt_state)), rng=rng)

  seconds = {"trainer": [], "minimal": []}
  run_trainer(), run_minimal()  # Compile and warm up.
  for _ in range(repeats):
    for name, run in (("trainer", run_trainer), ("minimal", run_minimal)):
      seconds[name].append(common.repeat_timing(run, 1, warmup=0)["median"])
  result = {"batch": batch, "steps": steps, "repeats": repeats}
  for name, values in seconds.items():
    median = float(np.median(values))
    result[name] = {"step_ms": 1e3 * median / steps, "examples_per_sec": steps * batch / median,
                    "spread": (max(values) - min(values)) / 2 / median}
  result["speed_vs_minimal"] = (result["trainer"]["examples_per_sec"] /
                                result["minimal"]["examples_per_sec"])
  return result


def config_changes(name: str, variant: str = "") -> dict:
  """What configs/NAME.py sets away from the defaults of its model kind, as
  `model_quality.train_families` overrides (`model.kind` first; not the run's length or K)."""
  config = common.config_file(name, variant)
  base = config_lib.get_config(model=config.model.kind)
  changes = {} if config.model.kind == "vae" else {"model.kind": config.model.kind}
  for section in ("data", "model", "train", "eval"):
    for key, value in config[section].items():
      if value != base[section][key] and f"{section}.{key}" not in _RUN_KEYS:
        changes[f"{section}.{key}"] = value
  return changes


def cifar10_config(quick: bool):
  """configs/cifar10_vdvae.py; with `quick` its smoke variant with `TINY_BLOCKS`."""
  config = common.config_file("cifar10_vdvae", "smoke" if quick else "")
  if quick:
    config.model.encoder_blocks, config.model.decoder_blocks = TINY_BLOCKS[32]
  return config


def digits_families(quick: bool) -> list[tuple[str, dict]]:
  """`DIGITS` as `(name, overrides)` for `model_quality.train_families`; with `quick` the smoke
  variants (and `TINY_BLOCKS`)."""
  families = []
  for name, label in DIGITS:
    changes = config_changes(name, "smoke" if quick else "")
    if changes.get("model.kind") == "vdvae":
      if quick:
        changes["model.encoder_blocks"], changes["model.decoder_blocks"] = TINY_BLOCKS[8]
      config = common.config_file(name)
      config.model.update({k.split(".")[1]: v for k, v in changes.items() if k != "model.kind"
                           and k.startswith("model.")})
      encoder = parse_blocks(config.model.encoder_blocks, "d", "encoder_blocks")
      decoder = parse_blocks(config.model.decoder_blocks, "m", "decoder_blocks")
      label = (f"{label}: {len(encoder)} + {len(decoder)} blocks, {len(decoder)} latent groups, "
               f"width {config.model.width}")
      changes["eval.chunk_size"] = _VDVAE_CHUNK
    families.append((f"{label} (`configs/{name}.py`)", changes))
  return families


def parameter_table() -> dict:
  """Per config of `CONFIGS`: its parameters (abstract init), the published count, blocks, width."""
  table = {}
  for name, shape, published in CONFIGS:
    config = common.config_file(name)
    table[name] = {
        "data_shape": list(shape), "parameters": parameter_count(config, shape),
        "published": published, "width": config.model.width,
        "encoder_blocks": len(parse_blocks(config.model.encoder_blocks, "d", "encoder_blocks")),
        "decoder_blocks": len(parse_blocks(config.model.decoder_blocks, "m", "decoder_blocks"))}
  return table


def memory_table(config, cases) -> tuple[list[dict], dict]:
  """One row per case `(devices, fsdp_devices, remat)` that this host has the devices for: the
  step's compiled memory (`compiled_memory`) and the backward residuals at the per-device batch;
  and `{(per-device batch, remat): residual bytes}` for remat off and on at each batch."""
  cases = [case for case in cases if case[0] <= jax.device_count()]
  residuals = {}
  for batch in sorted({BATCH // devices for devices, _, _ in cases}):
    for remat in (False, True):
      config.model.remat = remat
      residuals[batch, remat] = backward_residual_bytes(config, CIFAR10, batch)
  rows = []
  for devices, fsdp, remat in cases:
    config.model.remat = remat
    rows.append({"devices": devices, "fsdp_devices": fsdp, "remat": remat,
                 "batch_per_device": BATCH // devices, **compiled_memory(config, devices, fsdp),
                 "backward_residuals": residuals[BATCH // devices, remat]})
    print(f"memory: {rows[-1]}", flush=True)
  return rows, residuals


def run(quick: bool) -> tuple[str, dict]:
  record, seconds = {"machine": common.machine()}, {}
  start = time.perf_counter()
  record["parameters"] = parameter_table()
  seconds["parameters"] = time.perf_counter() - start

  # XLA:CPU cannot run the full model's step in reasonable time (nor at batch 32 in this machine's
  # memory): there, the smoke variant; on an accelerator the model itself.
  start = time.perf_counter()
  if quick:
    timed_config, variant = cifar10_config(quick), ":smoke, tiny blocks"
  elif jax.default_backend() != "cpu":
    timed_config, variant = cifar10_config(quick), ""
  else:
    timed_config, variant = common.config_file("cifar10_vdvae", "smoke"), ":smoke"
  timed_config.train.batch_size = 8 if quick else BATCH
  record["step_time"] = {"config": "configs/cifar10_vdvae.py" + variant,
                         **step_times(timed_config, *((3, 2) if quick else (20, 5)))}
  seconds["step_time"] = time.perf_counter() - start
  print(f"step time: {record['step_time']}", flush=True)

  start = time.perf_counter()
  record["memory_config"] = "configs/cifar10_vdvae.py" + (":smoke, tiny blocks" if quick else "")
  config = cifar10_config(quick)
  config.train.batch_size = BATCH
  record["memory"], residuals = memory_table(config, MEMORY_CASES[1::2] if quick else MEMORY_CASES)
  record["backward_residuals"] = {f"batch {b}, remat {'on' if r else 'off'}": v
                                  for (b, r), v in residuals.items()}
  seconds["memory"] = time.perf_counter() - start

  start = time.perf_counter()
  steps, num_samples = (10, 10) if quick else (2_000, 1_000)
  seeds = model_quality.SEEDS[:1] if quick else model_quality.SEEDS
  record["digits"] = model_quality.train_families(digits_families(quick), seeds, steps, num_samples)
  seconds["digits"] = time.perf_counter() - start

  record["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
  return _markdown(record, quick), record


def _mib(n: float) -> str:
  return f"{n / 2**20:,.0f}"


def _parameter_rows(parameters: dict) -> list[str]:
  rows = ["| config | data | encoder + decoder blocks | width | parameters | published | ratio |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
  for name, p in parameters.items():
    published = p["published"]
    rows.append(f"| `configs/{name}.py` | {'x'.join(map(str, p['data_shape']))} | "
                f"{p['encoder_blocks']} + {p['decoder_blocks']} | {p['width']} | "
                f"{p['parameters']:,} | " +
                (f"{published / 1e6:.0f}M | {p['parameters'] / published:.3f} |" if published
                 else "- | - |"))
  return rows


def _memory_rows(memory: list[dict]) -> list[str]:
  rows = ["| devices | FSDP | remat | batch per device | arguments | outputs (aliased) | "
          "temporaries | **total** | kept for backward (abstract) | compile (s) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for m in memory:
    fsdp = f"on, {m['fsdp_devices']}-way" if m["fsdp_devices"] > 1 else "off"
    rows.append(
        f"| {m['devices']} | {fsdp} | {'on' if m['remat'] else 'off'} | {m['batch_per_device']} | "
        f"{_mib(m['arguments'])} | "
        f"{_mib(m['outputs'])} ({_mib(m['aliased'])}) | {_mib(m['temporaries'])} | "
        f"**{_mib(m['total'])}** | {_mib(m['backward_residuals'])} | {m['compile_seconds']:.0f} |")
  return rows


def _memory_findings(memory: list[dict], residuals: dict) -> str:
  """Sentences comparing the compiled rows: FSDP against data parallelism on the same devices,
  remat against none on the same devices, and what remat keeps for the backward pass."""
  by = {(m["devices"], m["fsdp_devices"], m["remat"]): m for m in memory}
  lines = []
  for (devices, fsdp, remat), m in by.items():
    plain = by.get((devices, 1, remat))
    if fsdp > 1 and plain:
      lines.append(f"On {devices} devices FSDP ({fsdp}-way) cuts the arguments (parameters, "
                   f"optimizer state and EMA) from {_mib(plain['arguments'])} to "
                   f"{_mib(m['arguments'])} MiB per device and the total from "
                   f"{_mib(plain['total'])} to {_mib(m['total'])} MiB.")
    without = by.get((devices, fsdp, False))
    if remat and without:
      lines.append(f"On {devices} device(s) remat changes XLA's compiled total from "
                   f"{_mib(without['total'])} to {_mib(m['total'])} MiB, while the bytes that "
                   f"the forward pass keeps for the backward one fall from "
                   f"{_mib(without['backward_residuals'])} to {_mib(m['backward_residuals'])} "
                   "MiB.")
  kept = "; ".join(f"{k}: {_mib(v)} MiB" for k, v in residuals.items())
  return " ".join(lines + [f"Kept for the backward pass (abstract, per device batch): {kept}."])


def _digits_lines(record: dict) -> list[str]:
  """The per-seed table of test log p(x) (the deep model, second, against the first row) and the
  verdict: in how many seeds the deep model is above, and if not in all, how its ELBO and gap
  compare and what a run costs."""
  families = record["families"]
  base, deep = families[0], families[1]
  short = [f["name"].split(" (")[0] for f in families]
  rows = ["| seed | " + " | ".join(short) + f" | {short[1].split(':')[0]} - "
          f"{short[0].split(',')[0]} |",
          "| --- | " + " | ".join("---" for _ in families) + " | --- |"]
  for i, seed in enumerate(record["seeds"]):
    values = [f["runs"][i]["log_px"] for f in families]
    rows.append(f"| {seed} | " + " | ".join(f"{v:.2f}" for v in values) +
                f" | {values[1] - values[0]:+.2f} |")
  pairs = list(zip(deep["runs"], base["runs"]))
  wins, n = sum(d["log_px"] > b["log_px"] for d, b in pairs), len(pairs)
  mean = lambda key, runs: float(np.mean([r[key] for r in runs]))  # noqa: E731
  verdict = (f"**The deep model's test log p(x) is above the two-layer ladder's in {wins} of {n} "
             f"seeds** at {record['num_steps']:,} steps (mean difference "
             f"{mean('log_px', deep['runs']) - mean('log_px', base['runs']):+.2f} nats)" + "".join(
                 f"; above that of the {f['name'].split(' (')[0]} in "
                 f"{sum(d['log_px'] > r['log_px'] for d, r in zip(deep['runs'], f['runs']))} "
                 f"of {n}" for f in families[2:]) + ".")
  if wins < n:
    elbo = mean("elbo", deep["runs"]) - mean("elbo", base["runs"])
    gap = mean("gap", deep["runs"]) - mean("gap", base["runs"])
    verdict += (
        f" At equal steps it does not beat the ladder{'' if wins == 0 else ' in every seed'}. "
        f"Its test ELBO is {elbo:+.2f} nats from the ladder's and its gap log p(x) - ELBO "
        f"{gap:+.2f}: at this length of training it falls short mostly "
        + ("in the bound itself, not in how tight the bound is. " if elbo <= gap else
           "in how tight the bound is. ")
        + "Nothing was tuned on the test set, and every model had the same steps: a run of the "
        f"deep model (training and evaluation) took {mean('seconds', deep['runs']):.0f} s here "
        f"against the ladder's {mean('seconds', base['runs']):.0f} s, which is what bounds the "
        "steps of this section.")
  return [f"Test log p(x) (K = {record['num_samples']:,}) per seed:", "", *rows, "", verdict]


def _too_big(record: dict) -> str:
  """'needs N GiB of temporaries, ... ' from the full model's 1-device row, if compiled."""
  row = next((m for m in record["memory"] if m["devices"] == 1 and not m["remat"]), None)
  if row is None or ":smoke" in record["memory_config"]:
    return ""
  return (f"needs {row['temporaries'] / 2**30:.0f} GiB of temporaries (the memory table), more "
          "than this machine's memory, and ")


def _batches(digits: dict) -> str:
  """The training batch sizes of the digits families, e.g. '100'."""
  default = config_lib.get_config().train.batch_size
  return "/".join(sorted({str(f["overrides"].get("train.batch_size", default))
                          for f in digits["families"]}))


def _markdown(record: dict, quick: bool) -> str:
  info = record["machine"]
  gpu = info["platform"] == "gpu"
  step, digits = record["step_time"], record["digits"]
  host = (info["devices"] if gpu else
          f"{info['cpu']}, one of its {info['cores']} cores (shared with other work), "
          "8 forced CPU devices")
  return "\n".join([
      "## Very deep VAE (VDVAE)",
      "",
      f"Measured with `.venv/bin/python -m benchmarks.vdvae{' --quick' if quick else ''}` on "
      f"{info['date']}: {host}; jax {info['jax']}. The section took "
      f"{sum(record['seconds'].values()) / 60:.0f} minutes ("
      + ", ".join(f"{k} {v / 60:.1f}" for k, v in record["seconds"].items()) + ").",
      "",
      "Parameters of each published config, counted from the abstract init (`jax.eval_shape`, "
      "nothing compiled), against the counts in openai/vdvae's README:",
      "",
      *_parameter_rows(record["parameters"]),
      "",
      f"Compiled memory per device (MiB) of the train step of `{record['memory_config']}` as the "
      f"trainer jits it (`loop.jit_steps`: state sharded and donated, batch split over the "
      f"devices), global batch {BATCH}, parameters, AdamW moments and EMA in float32: XLA's "
      "memory analysis of `.lower(...).compile()` (nothing runs), total = arguments + outputs + "
      "temporaries (the donated state's outputs alias its arguments and are counted twice, as in "
      "the evaluator's table). \"Kept for backward\" is what the forward pass of -ELBO at the "
      "per-device batch keeps for the backward pass (`jax.vjp`'s residuals, traced abstractly): "
      "XLA:CPU's memory analysis does not show rematerialization (its temporaries are the same "
      "with and without `jax.checkpoint`, see tests/models/test_vdvae.py), so that column is "
      "where remat shows on this machine. One compile of the full step takes minutes on one core "
      "here (the last column), so on 8 devices only remat off is compiled.",
      "",
      *_memory_rows(record["memory"]),
      "",
      _memory_findings(record["memory"], record["backward_residuals"]),
      "",
      f"Step time of the trainer's step (skip test, clipping, EMA, metrics, per-group KLs) against "
      f"a minimal jitted step of the same model (value_and_grad of -ELBO and an optax.adamw "
      f"update, nothing else), {step['repeats']} interleaved repeats of {step['steps']} steps each "
      f"on one device, batch {step['batch']}, the same batches: `{step['config']}`" +
      ("." if gpu else " (one block per token of the block strings, width 16, 4 latent channels, "
       f"2 logistics): the full model at batch {BATCH} {_too_big(record)}takes minutes to "
       "compile on this CPU. The trainer's extra work (clipping, the skip test, the EMA, norms) is "
       "passes over the parameters, which grow with the parameters while the step grows with "
       "parameters times activations: on the full model we expect it to weigh less."),
      "",
      "| model | trainer step (ms) | minimal step (ms) | trainer speed / minimal |",
      "| --- | --- | --- | --- |",
      f"| `{step['config']}`, batch {step['batch']} | {step['trainer']['step_ms']:.1f} "
      f"(+-{100 * step['trainer']['spread']:.0f}%) | {step['minimal']['step_ms']:.1f} "
      f"(+-{100 * step['minimal']['spread']:.0f}%) | {step['speed_vs_minimal']:.2f}x |",
      "",
      ("Absolute times are from the GPU named above." if gpu else
       "Absolute times on this shared CPU are indicative only; the ratio is the figure."),
      "",
      f"On the embedded digits, each config file as it is, trained for {digits['num_steps']:,} "
      f"steps (batch {_batches(digits)}) with seeds {', '.join(map(str, digits['seeds']))}; the "
      f"test split evaluated at K = {digits['num_samples']:,}; the first row is the baseline of "
      "the paired per-seed comparison (same seed, same data order), as in the model-quality table. "
      "The config changes column lists what each file sets away from its model kind's defaults.",
      "",
      *model_quality.table(digits),
      "",
      *_digits_lines(digits),
  ])


if __name__ == "__main__":
  common.main(NAME, run, forced_devices=8)
