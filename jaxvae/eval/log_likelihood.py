"""The evaluation of a checkpoint on a split: importance-sampled log p(x) for any model.

The estimate is `jaxvae.losses.chunked_iwae_bound` with large K: per-example keys
`fold_in(key(eval.seed), example_id)`, chunks of samples reduced with a running logsumexp.
"""

import math
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvae import data as data_lib
from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.train import checkpoint as checkpoint_lib
from jaxvae.train import mesh as mesh_lib
from jaxvae.train.metrics import MetricWriter, read_jsonl
from jaxvae.train.state import abstract_params

def eval_path(workdir: str) -> str:
  return os.path.join(workdir, "eval", "log_likelihood.jsonl")


def evaluate(config: ml_collections.ConfigDict, workdir: str, *, step: int | None = None,
             split: str | None = None, num_samples: int | None = None,
             verbose: bool = True) -> dict:
  """Estimates log p(x) on `split` at checkpoint `step` (default: latest) and records it.

  Appends `{step, split, num_samples, num_examples, log_px, log_px_stderr, elbo, bits_per_dim, ...}`
  to `WORKDIR/eval/log_likelihood.jsonl` and TensorBoard, unless that (step, split, K) is already
  there, in which case the recorded line is returned.
  """
  split = split or config.data.eval_split
  num_samples = config.eval.num_samples if num_samples is None else num_samples
  if num_samples <= 0:
    raise UserError(f"--num_samples must be positive, got {num_samples}")
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  step = checkpoints.resolve_step(step)
  for record in read_jsonl(eval_path(workdir)):
    if (record["step"], record["split"], record["num_samples"]) == (step, split, num_samples):
      if verbose:
        _print(record)
      return record

  mesh = mesh_lib.make_mesh(config.train.num_devices)
  mesh_lib.check_divisible(config.eval.batch_size, mesh, "eval.batch_size")
  data = data_lib.load_split(config.data, split)
  model = build_model(config.model, data.image_shape)
  params = checkpoints.restore_params(
      step, abstract_params(model, data.image_shape, mesh_lib.replicated(mesh)))
  checkpoints.close()

  def estimate(params, x, labels, ids):
    example_keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(config.eval.seed), ids)
    log_weights_fn = lambda keys: model.apply(  # noqa: E731
        {"params": params}, x, keys, labels, method=model.log_weights).values
    return losses.chunked_iwae_bound(log_weights_fn, example_keys, num_samples,
                                     config.eval.chunk_size)

  batch_sharding = mesh_lib.batch_sharding(mesh)
  estimate = jax.jit(estimate, in_shardings=(mesh_lib.replicated(mesh), batch_sharding,
                                             batch_sharding, batch_sharding),
                     out_shardings=mesh_lib.replicated(mesh))
  start = time.perf_counter()
  log_px, elbo = [], []
  with jax.default_matmul_precision("highest"):
    for local in data_lib.eval_batches(config, data, config.eval.batch_size):
      batch = mesh_lib.global_batch(local, mesh)
      lp, el = estimate(params, batch["image"], batch["label"], batch["id"])
      mask = np.asarray(jax.device_get(batch["mask"]))
      log_px.append(np.asarray(lp, np.float64)[mask])
      elbo.append(np.asarray(el, np.float64)[mask])
  log_px, elbo = np.concatenate(log_px), np.concatenate(elbo)
  num_dims = math.prod(data.image_shape)
  record = {
      "step": step, "split": split,
      "num_samples": num_samples, "num_examples": int(log_px.size),
      "log_px": float(log_px.mean()),
      "log_px_stderr": float(log_px.std(ddof=1) / math.sqrt(log_px.size)) if log_px.size > 1 else 0.0,
      "elbo": float(elbo.mean()),
      "bits_per_dim": float(losses.bits_per_dim(log_px.mean(), num_dims)),
      "seconds": round(time.perf_counter() - start, 3),
  }
  record["gap"] = record["log_px"] - record["elbo"]
  writer = MetricWriter(eval_path(workdir), os.path.join(workdir, "tensorboard", "eval"))
  writer.write(step, {k: v for k, v in record.items() if k != "step"},
               tag_prefix=f"{split}/K{num_samples}/")
  writer.close()
  if verbose:
    _print(record)
  return record


def _print(record: dict) -> None:
  print(f"step {record['step']}: {record['split']} log p(x) = {record['log_px']:.3f} "
        f"+- {record['log_px_stderr']:.3f} nats (K={record['num_samples']}, "
        f"{record['num_examples']} examples); ELBO = {record['elbo']:.3f}; "
        f"{record['bits_per_dim']:.4f} bits/dim", flush=True)
