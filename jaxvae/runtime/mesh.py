"""The device mesh `('data', 'fsdp')` and the shardings the trainer and evaluator use.

Batches are split over every device (both axes). The train state is replicated over `data`; with
`train.fsdp_devices = F > 1` its parameters, optimizer moments and EMA are also split over the
`fsdp` axis of size F (FSDP / ZeRO-3 style: each device stores 1/F of them and XLA gathers them for
the forward and backward passes), so that models which do not fit one device still train.
"""

from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxvae.errors import UserError

_BATCH_AXES = ("data", "fsdp")


def make_mesh(num_devices: int = 0, fsdp_devices: int = 1) -> Mesh:
  """A `('data', 'fsdp')` mesh of shape `(n / fsdp_devices, fsdp_devices)` over the first
  `n = num_devices` devices (0: every device of every process)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise UserError(f"train.num_devices={num_devices} but only {len(devices)} devices exist; "
                      f"set it to 0 (all) or at most {len(devices)}")
    if jax.process_count() > 1 and num_devices != len(devices):
      raise UserError("train.num_devices must be 0 (all devices) in a multi-process job")
    devices = devices[:num_devices]
  if len(devices) % fsdp_devices:
    raise UserError(f"train.fsdp_devices={fsdp_devices} must divide the number of devices "
                    f"({len(devices)}); choose a divisor, or 1 for pure data parallelism")
  return jax.make_mesh((len(devices) // fsdp_devices, fsdp_devices), ("data", "fsdp"),
                       axis_types=(AxisType.Auto,) * 2, devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (example) axis split over all devices; everything else whole."""
  return NamedSharding(mesh, PartitionSpec(_BATCH_AXES))


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """A chunk of batches `[n, B, ...]` for one multi-step call: the example axis split."""
  return NamedSharding(mesh, PartitionSpec(None, _BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def fsdp_sharding(shape: tuple[int, ...], mesh: Mesh) -> NamedSharding:
  """An array's largest axis divisible by the `fsdp` axis size is split over it; else replicated."""
  size = mesh.shape["fsdp"]
  candidates = [axis for axis, d in enumerate(shape) if size > 1 and d % size == 0]
  if not candidates:
    return replicated(mesh)
  axis = max(candidates, key=lambda a: shape[a])
  return NamedSharding(mesh, PartitionSpec(*([None] * axis + ["fsdp"])))


def state_shardings(abstract_state: Any, mesh: Mesh) -> Any:
  """Shardings of a `TrainState` (of `ShapeDtypeStruct`s): params, optimizer state and EMA by
  `fsdp_sharding`, the step, key and counters replicated."""
  by_shape = lambda tree: jax.tree.map(lambda a: fsdp_sharding(a.shape, mesh), tree)
  shardings = jax.tree.map(lambda _: replicated(mesh), abstract_state)
  return shardings.replace(params=by_shape(abstract_state.params),
                           opt_state=by_shape(abstract_state.opt_state),
                           ema_params=by_shape(abstract_state.ema_params))


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's rows of a batch -> global `jax.Array`s sharded over all devices."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)


def check_divisible(batch_size: int, mesh: Mesh, key: str) -> None:
  if batch_size % mesh.size:
    raise UserError(f"{key}={batch_size} must be divisible by the number of devices ({mesh.size}); "
                    f"use a multiple of {mesh.size} or set train.num_devices")
