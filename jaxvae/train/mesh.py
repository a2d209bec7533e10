"""The device mesh and the two shardings the trainer and evaluator use."""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxvae.errors import UserError


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D `('data',)` mesh over the first `num_devices` devices (0: every device of every process)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise UserError(f"train.num_devices={num_devices} but only {len(devices)} devices exist; "
                      f"set it to 0 (all) or at most {len(devices)}")
    if jax.process_count() > 1 and num_devices != len(devices):
      raise UserError("train.num_devices must be 0 (all devices) in a multi-process job")
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Auto,), devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (example) axis split over `data`; everything else whole."""
  return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's rows of a batch -> global `jax.Array`s sharded over `data`."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)


def check_divisible(batch_size: int, mesh: Mesh, key: str) -> None:
  if batch_size % mesh.size:
    raise UserError(f"{key}={batch_size} must be divisible by the number of devices ({mesh.size}); "
                    f"use a multiple of {mesh.size} or set train.num_devices")


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """A chunk of batches `[n, B, ...]` for one multi-step call: the example axis split over `data`."""
  return NamedSharding(mesh, PartitionSpec(None, "data"))
