"""One process of the 2-process data test: writes the global batches it sees (gathered) to a file.

    python -m tests.data.multiprocess_worker OUT TFDS_DIR --coordinator_address=... \
        --num_processes=N --process_id=I
"""

import sys

import numpy as np


def main(out: str, tfds_dir: str, *flags: str) -> None:
  from jaxvae.runtime import distributed

  values = dict(f.lstrip("-").split("=", 1) for f in flags)
  distributed.initialize(values["coordinator_address"], int(values["num_processes"]),
                         int(values["process_id"]))
  import jax
  from jax.experimental import multihost_utils

  from jaxvae import data
  from jaxvae.config import get_config
  from jaxvae.runtime import mesh as mesh_lib

  config = get_config("smoke")
  config.data.data_dir = f"{tfds_dir}/process_{jax.process_index()}"
  mesh = mesh_lib.make_mesh()
  split = data.load_split(config.data, "train")
  local = data.iterate_from(data.train_batches(config, split), 2, num_threads=2)
  batches = data.prefetch_to_device(local, mesh_lib.batch_sharding(mesh))
  seen = {}
  for step in (2, 3, 4):
    batch = next(batches)
    assert batch["image"].shape[0] == config.train.batch_size
    for key, value in batch.items():
      seen[f"train_{step}_{key}"] = multihost_utils.process_allgather(value, tiled=True)
  test = data.load_split(config.data, "test")
  for i, local_batch in enumerate(data.eval_batches(config, test, 64)):
    batch = mesh_lib.global_batch(local_batch, mesh)
    for key, value in batch.items():
      seen[f"eval_{i}_{key}"] = multihost_utils.process_allgather(value, tiled=True)
  if jax.process_index() == 0:
    np.savez(out, **{k: np.asarray(v) for k, v in seen.items()})
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])
