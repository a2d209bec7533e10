"""Input pipeline alone vs. the train step it feeds, on the same data, in one invocation.

    .venv/bin/python -m benchmarks.data_throughput [--quick]

For each dataset: examples/sec of the grain pipeline alone (read, preprocess, batch, prefetch
threads, transfer to the device mesh), and examples/sec the jitted train step consumes on batches
already on the device. The pipeline must deliver several times what the step consumes.
"""

import itertools
import tempfile

import jax
import numpy as np

from benchmarks import common
from jaxvae import config as config_lib
from jaxvae import data
from jaxvae.models import build_model
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.train import state as state_lib


def _mnist_like_npz(directory: str, num: int) -> str:
  """A synthetic 28x28 uint8 dataset shaped like MNIST (this machine has no network)."""
  rng = np.random.default_rng(0)
  path = f"{directory}/mnist_like.npz"
  np.savez(path, train=rng.integers(0, 256, (num, 28, 28), dtype=np.uint8),
           test=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8))
  return path


def _pipeline_rate(config, split, mesh, num_batches: int) -> dict:
  def consume():
    local = data.iterate_from(data.train_batches(config, split), 0, config.data.num_threads)
    batches = data.prefetch_to_device(local, mesh_lib.batch_sharding(mesh))
    for batch in itertools.islice(batches, num_batches):
      jax.block_until_ready(batch)
  timing = common.repeat_timing(consume, repeats=3)
  return {**timing, "examples_per_sec": num_batches * config.train.batch_size / timing["median"]}


def _train_step_rate(config, split, mesh, num_steps: int) -> dict:
  model = build_model(config.model, split.image_shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  replicated = mesh_lib.replicated(mesh)
  state = jax.jit(lambda k: state_lib.init_state(model, optimizer, split.image_shape, k),
                  out_shardings=replicated)(jax.random.key(0))
  batch = next(data.prefetch_to_device(
      data.iterate_from(data.train_batches(config, split), 0, 1), mesh_lib.batch_sharding(mesh)))
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, config.train),
                 donate_argnums=0)

  def consume():
    nonlocal state
    for _ in range(num_steps):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
  timing = common.repeat_timing(consume, repeats=3)
  return {**timing, "examples_per_sec": num_steps * config.train.batch_size / timing["median"]}


def run(quick: bool) -> tuple[str, dict]:
  mesh = mesh_lib.make_mesh(1)  # One CPU device; the scaling benchmark covers meshes.
  num = 20 if quick else 200
  rows, record = [], {}
  with tempfile.TemporaryDirectory() as tmp:
    digits = config_lib.get_config()
    digits.data.data_dir = f"{tmp}/tfds"
    mnist = config_lib.get_config()
    mnist.data.source, mnist.data.path = "npz", _mnist_like_npz(tmp, 2_000 if quick else 20_000)
    mnist.model.hidden_sizes, mnist.model.latent_dim = (500,), 20
    mnist.train.batch_size = 128
    for name, config in (("digits 8x8, MLP 256-256, batch 100", digits),
                         ("MNIST-shaped 28x28, MLP 784-500-20, batch 128", mnist)):
      split = data.load_split(config.data, "train")
      pipeline = _pipeline_rate(config, split, mesh, num)
      train = _train_step_rate(config, split, mesh, num)
      ratio = pipeline["examples_per_sec"] / train["examples_per_sec"]
      record[name] = {"pipeline": pipeline, "train_step": train, "ratio": ratio}
      rows.append(f"| {name} | {pipeline['examples_per_sec']:,.0f} ({common.spread(pipeline)}) | "
                  f"{train['examples_per_sec']:,.0f} ({common.spread(train)}) | {ratio:.1f}x |")
  markdown = "\n".join([
      "## Input pipeline",
      "",
      "Examples/sec of the grain pipeline alone (dynamic binarization, 2 reader threads, transfer to "
      "the device mesh) against the jitted train step on batches already on the device, same data, "
      "same invocation; median over 3 repeats (spread: half the min-max range).",
      "",
      "| data and model | pipeline alone | train step | pipeline / step |",
      "| --- | --- | --- | --- |",
      *rows,
  ])
  return markdown, record


if __name__ == "__main__":
  common.main("input_pipeline", run)
