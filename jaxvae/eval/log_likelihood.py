"""The evaluation of checkpoints on a split: importance-sampled log p(x) for any model.

    log p(x) ~= logsumexp_k [log p(x, z_k) - log q(z_k | x)] - log K,   z_k ~ q(z | x)

(Burda et al., 2016) is `jaxvae.losses.chunked_iwae_bound`: chunks of samples reduced with a
running logsumexp, so memory does not grow with K, and several K (`1, 10, ..., 5000`) from one pass
as nested subsets of the same samples. Example b gets the key `fold_in(key(eval.seed), id_b)` and
its sample k the key `fold_in(that, k)`, so the numbers do not depend on the batch size, the chunk
size, the number of devices or of processes. Examples are sharded over every device of every
process; arithmetic is float32 with matmuls at `precision='highest'`.

Results go to `WORKDIR/eval/log_likelihood.jsonl` (one line per (checkpoint, split, K)),
`WORKDIR/eval/diagnostics.jsonl` (one line per (checkpoint, split)) and TensorBoard
(`WORKDIR/tensorboard/eval`). The JSONL is also the ledger: what it holds is never recomputed.
"""

import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvae import data as data_lib
from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae.eval import posterior as posterior_lib
from jaxvae.models import interface
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.runtime import distributed
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.runtime import workdir as workdir_lib
from jaxvae.runtime.metrics import MetricWriter, read_jsonl
from jaxvae.runtime.progress import Progress
from jaxvae.runtime.trained import abstract_variables, build_model, check_labels

_REFINE_KEY_ID = 2**32 - 1  # Refinement draws use the key of this (nonexistent) example id.


def resolve_num_samples(eval_config: ml_collections.ConfigDict,
                        num_samples: int | Sequence[int] | None) -> tuple[int, ...]:
  """The K to report, increasing: `num_samples` if given, else `eval.nested_num_samples` and
  `eval.num_samples`."""
  if num_samples is None:
    wanted = set(eval_config.nested_num_samples) | {eval_config.num_samples}
  elif isinstance(num_samples, int):
    wanted = {num_samples}
  else:
    wanted = set(num_samples)
  if not wanted or any(not isinstance(k, int) or k <= 0 for k in wanted):
    raise UserError(f"--num_samples must be positive integers, got {num_samples}")
  return tuple(sorted(wanted))


def _ledger_key(record: dict) -> tuple:
  return (record["step"], record["split"], record["num_samples"], record.get("refine_steps", 0))


class Evaluator:
  """What does not change from checkpoint to checkpoint: data, model, mesh and the compiled step.

  Built once by `evaluate` and by the follow job (`jaxvae.eval.job.follow`), so a job that evaluates
  many checkpoints compiles once.
  """

  def __init__(self, config: ml_collections.ConfigDict, split: str | None = None,
               num_samples: int | Sequence[int] | None = None, refine_steps: int | None = None,
               model: Any = None):
    """`model`: default the one `config.model` names; any module with the model interface."""
    self.config = config
    self.split = split or config.data.eval_split
    self.num_samples = resolve_num_samples(config.eval, num_samples)
    self.refine_steps = config.eval.refine_steps if refine_steps is None else refine_steps
    if self.refine_steps < 0:
      raise UserError(f"--refine_steps must be >= 0, got {self.refine_steps}")
    self.mesh = mesh_lib.make_mesh(config.train.num_devices)
    # Whole devices: an uneven batch is padded (padding is masked out, so every example counts
    # once, and per-example keys make the numbers independent of the batch size).
    self.batch_size = -(-config.eval.batch_size // self.mesh.size) * self.mesh.size
    self.data = data_lib.load_split(config.data, self.split, config.model)
    if model is not None:
      interface.check_model(model)
    self.model = model or build_model(config.model, self.data.image_shape)
    check_labels(self.model, self.data, self.split)
    self.abstract_variables = abstract_variables(self.model, self.data.image_shape,
                                                 mesh_lib.replicated(self.mesh))
    self.posterior_problem = posterior_lib.posterior_problem(self.model, interface.FACTORIZED_KL)
    refine_problem = posterior_lib.posterior_problem(self.model, interface.POSTERIOR_PARAMETERS)
    if self.refine_steps and refine_problem:
      raise UserError(f"--refine_steps needs the posterior's parameters: {refine_problem}; use "
                      f"--refine_steps=0 for this model")
    batch_sharding = mesh_lib.batch_sharding(self.mesh)
    self._estimate = jax.jit(self._estimate_batch, in_shardings=(
        mesh_lib.replicated(self.mesh),) + (batch_sharding,) * 4,
        out_shardings=mesh_lib.replicated(self.mesh))

  def _estimate_batch(self, variables: dict, x: jax.Array, labels: jax.Array, ids: jax.Array,
                      mask: jax.Array) -> dict:
    """Per-example results of one global batch `[B]`: bounds `[B, J]` for the J values of K."""
    model, cfg = self.model, self.config.eval
    root = jax.random.key(cfg.seed)
    example_keys = jax.vmap(jax.random.fold_in, (None, 0))(root, ids)

    labels = interface.labels_for(model, labels)

    def log_weights(keys, posterior=None):
      extra = () if posterior is None else (posterior,)
      terms = model.apply(variables, x, keys, labels, *extra, method=model.log_weights)
      interface.check_log_weights(model, terms, keys)
      return terms.values

    log_px, elbo = losses.chunked_iwae_bound(log_weights, example_keys, self.num_samples,
                                             cfg.chunk_size)
    out = {"id": ids, "mask": mask, "log_px": log_px.T, "elbo": elbo.T}
    if self.posterior_problem is None:
      out["posterior_mean"], out["kl_per_dim"] = model.apply(
          variables, x, labels, method=model.kl_per_dimension)
    if self.refine_steps:
      refine_keys = jax.vmap(jax.random.fold_in, (None, 0))(
          jax.random.fold_in(root, jnp.uint32(_REFINE_KEY_ID)), ids)
      posterior = model.apply(variables, x, labels, method=model.posterior_parameters)
      refined = posterior_lib.refine_posterior(
          lambda post, keys: log_weights(keys, post), posterior, refine_keys,
          num_steps=self.refine_steps, num_samples=cfg.refine_num_samples,
          learning_rate=cfg.refine_learning_rate)
      refined_log_px, refined_elbo = losses.chunked_iwae_bound(
          lambda keys: log_weights(keys, refined), example_keys, self.num_samples, cfg.chunk_size)
      out["refined_log_px"], out["refined_elbo"] = refined_log_px.T, refined_elbo.T
    return out

  def restore(self, checkpoints: checkpoint_lib.Checkpoints, step: int) -> dict:
    """The model's variables at checkpoint `step` (no optimizer state is read)."""
    return checkpoints.restore_variables(step, self.abstract_variables)

  def run(self, variables: dict) -> dict[str, np.ndarray]:
    """Per-example results over the whole split, in example order, as float64 NumPy arrays.

    `log_px`, `elbo` (and `refined_*`) are `[N, J]`; `posterior_mean`, `kl_per_dim` `[N, L]`.
    """
    total = len(self.data.source)
    progress = Progress(0, total, unit="examples", label=f"eval {self.split}: ", every=15.0)
    parts = []  # Outputs are replicated, so every process holds all of them.
    with jax.default_matmul_precision("highest"):
      for index, local in enumerate(data_lib.eval_batches(self.config, self.data,
                                                          self.batch_size)):
        batch = mesh_lib.global_batch(local, self.mesh)
        parts.append(self._estimate(variables, batch["image"], batch["label"], batch["id"],
                                    batch["mask"]))
        if index:  # One batch stays in flight while the one before is fetched.
          parts[-2] = jax.tree.map(np.asarray, parts[-2])
          progress.update(min(index * self.batch_size, total))
    parts = [jax.tree.map(np.asarray, p) for p in parts]
    progress.update(total)
    progress.close()
    keep = np.concatenate([p["mask"] for p in parts])
    return {name: np.concatenate([p[name] for p in parts])[keep].astype(
        np.int64 if name == "id" else np.float64)
            for name in parts[0] if name != "mask"}

  def records(self, step: int, results: dict[str, np.ndarray], seconds: float) -> list[dict]:
    """One record per K: means over examples, the standard error of log p(x), bits/dim."""
    num_dims = math.prod(self.data.image_shape)
    records = []
    for j, k in enumerate(self.num_samples):
      log_px, elbo = results["log_px"][:, j], results["elbo"][:, j]
      record = {"step": step, "split": self.split, "num_samples": k,
                "num_examples": int(log_px.size), **_summary(log_px, elbo)}
      if self.config.data.source != "toy":  # Bits per dimension of pixels, not of 1-D reals.
        record["bits_per_dim"] = float(losses.bits_per_dim(record["log_px"], num_dims))
      record["seconds"] = round(seconds, 3)
      record["refine_steps"] = self.refine_steps
      if self.refine_steps:
        refined = _summary(results["refined_log_px"][:, j], results["refined_elbo"][:, j])
        record.update({f"refined_{name}": value for name, value in refined.items()})
        record["amortization_gap"] = record["refined_elbo"] - record["elbo"]
      records.append(record)
    return records

  def diagnostics(self, step: int, results: dict[str, np.ndarray]) -> dict:
    record = {"step": step, "split": self.split, "num_examples": int(results["id"].size)}
    if self.posterior_problem is not None:
      record["unavailable"] = (f"posterior diagnostics need a diagonal Gaussian posterior: "
                               f"{self.posterior_problem}")
      return record
    record.update(posterior_lib.diagnostics(results["posterior_mean"], results["kl_per_dim"]))
    return record


def _summary(log_px: np.ndarray, elbo: np.ndarray) -> dict:
  n = log_px.size
  stderr = float(log_px.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
  summary = {"log_px": float(log_px.mean()), "log_px_stderr": stderr, "elbo": float(elbo.mean())}
  summary["gap"] = summary["log_px"] - summary["elbo"]
  return summary


def evaluate_step(evaluator: Evaluator, checkpoints: checkpoint_lib.Checkpoints, workdir: str,
                  step: int, verbose: bool = True) -> list[dict]:
  """Evaluates checkpoint `step` for every K of `evaluator` not yet in the ledger; all its records.

  Writes the new records (and the step's diagnostics) to `WORKDIR/eval/*.jsonl` and TensorBoard.
  """
  wanted = {(step, evaluator.split, k, evaluator.refine_steps): k for k in evaluator.num_samples}
  done = {_ledger_key(r): r for r in read_jsonl(workdir_lib.eval_path(workdir))
          if _ledger_key(r) in wanted}
  if distributed.agree(int(len(done) < len(wanted))):
    variables = evaluator.restore(checkpoints, step)
    start = time.perf_counter()
    results = evaluator.run(variables)
    seconds = time.perf_counter() - start
    writer = MetricWriter(workdir_lib.eval_path(workdir),
                          workdir_lib.tensorboard_dir(workdir, "eval"))
    for record in evaluator.records(step, results, seconds):
      if _ledger_key(record) not in done:
        done[_ledger_key(record)] = record
        writer.write(step, {k: v for k, v in record.items() if k != "step"},
                     tag_prefix=f"{evaluator.split}/K{record['num_samples']}/")
    writer.close()
    diagnostics = evaluator.diagnostics(step, results)  # They do not depend on K: once a step.
    if not any((r["step"], r["split"]) == (step, evaluator.split)
               for r in read_jsonl(workdir_lib.diagnostics_path(workdir))):
      writer = MetricWriter(workdir_lib.diagnostics_path(workdir),
                            workdir_lib.tensorboard_dir(workdir, "eval"))
      writer.write(step, {k: v for k, v in diagnostics.items() if k != "step"},
                   tag_prefix=f"{evaluator.split}/diagnostics/")
      writer.close()
    if verbose and diagnostics.get("warning"):
      print(f"step {step}: warning: {diagnostics['warning']}", flush=True)
  records = [done[key] for key in wanted]
  if verbose:
    for record in records:
      _print(record)
  return records


def evaluate(config: ml_collections.ConfigDict, workdir: str, *, step: int | None = None,
             split: str | None = None, num_samples: int | Sequence[int] | None = None,
             refine_steps: int | None = None, verbose: bool = True,
             model: Any = None) -> dict:
  """Estimates log p(x) on `split` at checkpoint `step` (default: latest) and records it.

  Args:
    config: the run's config (its `eval` section gives K, chunk and batch sizes, seed).
    workdir: the run directory.
    step: a saved step, or None for the latest.
    split: default `config.data.eval_split`.
    num_samples: K, or several K reported from one pass (nested subsets of the same samples);
      default `config.eval.nested_num_samples` and `config.eval.num_samples`.
    refine_steps: per-example posterior refinement steps (default `config.eval.refine_steps`);
      records then also hold `refined_log_px`, `refined_elbo` and `amortization_gap`.
    model: the model, default the one `config.model` names (any module with the interface).

  Appends one line `{step, split, num_samples, num_examples, log_px, log_px_stderr, elbo, gap,
  bits_per_dim, seconds, refine_steps}` per K to `WORKDIR/eval/log_likelihood.jsonl` (`seconds`:
  the one pass that gives every K), unless already recorded. Returns the record of the largest K.

  Example:
    >>> evaluate(config, "runs/digits", num_samples=(1, 10, 100, 1000, 5000))["log_px"]
  """
  evaluator = Evaluator(config, split, num_samples, refine_steps, model)
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  try:
    step = checkpoints.resolve_step(step)
    return evaluate_step(evaluator, checkpoints, workdir, step, verbose)[-1]
  finally:
    checkpoints.close()


def _print(record: dict) -> None:
  bits = f"; {record['bits_per_dim']:.4f} bits/dim" if "bits_per_dim" in record else ""
  refined = ""
  if record.get("refine_steps"):
    refined = (f"; after {record['refine_steps']} refinement steps: log p(x) = "
               f"{record['refined_log_px']:.3f}, ELBO = {record['refined_elbo']:.3f} "
               f"(amortization gap {record['amortization_gap']:.3f})")
  print(f"step {record['step']}: {record['split']} log p(x) = {record['log_px']:.3f} "
        f"+- {record['log_px_stderr']:.3f} nats (K={record['num_samples']}, "
        f"{record['num_examples']} examples); ELBO = {record['elbo']:.3f}{bits}{refined}",
        flush=True)


__all__ = ["Evaluator", "evaluate", "evaluate_step", "resolve_num_samples"]
