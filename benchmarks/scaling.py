"""The train step on 1, 2, 4 and 8 devices of one host: the sharded path's correctness and cost.

On forced CPU devices (which share the host's cores) this checks the path, not real scaling: the
parameters after the same steps must agree with 1 device, and the time ratio shows the partitioning
overhead. On accelerators the same table shows real scaling.
"""

import jax
import numpy as np

from benchmarks import common
from jaxvae import config as config_lib
from jaxvae import data
from jaxvae.models import build_model
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.train import state as state_lib


def _run_on(config, split, num_devices: int, num_steps: int):
  mesh = mesh_lib.make_mesh(num_devices)
  model = build_model(config.model, split.image_shape)
  optimizer, schedule = state_lib.make_optimizer(config.train)
  replicated = mesh_lib.replicated(mesh)
  init = jax.jit(lambda k: state_lib.init_state(model, optimizer, split.image_shape, k),
                 out_shardings=replicated)
  batches = data.train_batches(config, split)
  global_batches = [mesh_lib.global_batch(batches[s], mesh) for s in range(num_steps)]
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, config.train),
                 in_shardings=(replicated, mesh_lib.batch_sharding(mesh)),
                 out_shardings=(replicated, replicated), donate_argnums=0)
  final = {}

  def train():
    state = init(jax.random.key(config.seed))
    for batch in global_batches:
      # Waiting for each step: many in-flight collectives over forced CPU devices sharing two
      # cores can miss XLA's 40 s rendezvous timeout.
      state, _ = jax.block_until_ready(step(state, batch))
    final["params"] = jax.block_until_ready(state.params)
  timing = common.repeat_timing(train, repeats=3)
  return timing, final["params"]


def run(quick: bool) -> tuple[str, dict]:
  config = config_lib.get_config()
  config.train.batch_size = 128
  config.train.steps_per_call = 1
  split = data.load_split(config.data, "train")
  num_steps = 20 if quick else 200
  rows, record, reference = [], {}, None
  for devices in (1, 2, 4, 8):
    if devices > jax.device_count():
      break
    timing, params = _run_on(config, split, devices, num_steps)
    reference = reference or (timing, params)
    deviation = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference[1])))
    ratio = reference[0]["median"] / timing["median"]
    record[devices] = {"timing": timing, "speed_vs_1": ratio, "max_param_deviation": deviation}
    rows.append(f"| {devices} | {ratio:.2f}x ({common.spread(timing)}) | {deviation:.1e} |")
  markdown = "\n".join([
      "## Scaling over devices of one host",
      "",
      f"The default digits VAE, batch 128, {num_steps} train steps (one jitted step per call, each awaited), data "
      f"parallel over a `('data',)` mesh of N devices; speed relative to 1 device in the same "
      f"invocation, and the largest parameter difference from the 1-device run after the same steps. "
      f"On forced CPU devices this measures the sharded path's overhead, not real scaling.",
      "",
      "| devices | speed vs 1 device | max parameter difference |",
      "| --- | --- | --- |",
      *rows,
  ])
  return markdown, record


if __name__ == "__main__":
  common.main("scaling", run, forced_devices=8)
