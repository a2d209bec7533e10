"""The code prior: causality, its log-probability against enumeration, its sampler, and the two
stages through the CLI's library calls (train, eval, sample)."""

import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae.eval.sample import sample_to_png
from jaxvae.models.code_prior import CausalTransformer
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.train import loop

NUM_CODES, LENGTH = 3, 4
PRIOR = CausalTransformer(NUM_CODES, LENGTH, width=16, num_layers=2, num_heads=2)
ALL = jnp.asarray(list(itertools.product(range(NUM_CODES), repeat=LENGTH)), jnp.int32)  # [81, 4]


@pytest.fixture(scope="module")
def params():
  params = jax.jit(PRIOR.init)(jax.random.key(0), ALL[:1])["params"]
  # Larger output weights than at init, so the conditionals are far from uniform.
  return jax.tree.map(lambda p: p * 1.5, params)


def test_a_later_code_never_changes_earlier_logits(params):
  logits = jax.jit(PRIOR.apply)({"params": params}, ALL)  # [81, L, N]
  for position in range(LENGTH):
    changed = ALL.at[:, position].set((ALL[:, position] + 1) % NUM_CODES)
    other = PRIOR.apply({"params": params}, changed)
    np.testing.assert_allclose(other[:, :position + 1], logits[:, :position + 1], atol=1e-5)
    if position + 1 < LENGTH:  # and it does inform the next one
      assert np.abs(other[:, position + 1] - logits[:, position + 1]).max() > 1e-3


def test_log_prob_is_a_distribution_over_all_grids_with_the_right_conditionals(params):
  log_p = np.float64(jax.jit(lambda p: PRIOR.apply({"params": p}, ALL, method=PRIOR.log_prob))(
      params))
  np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-5)
  logits = np.float64(PRIOR.apply({"params": params}, ALL))
  # Enumeration: p(c_0 .. c_l) summed over the rest, divided by p(c_0 .. c_{l-1}), is softmax(l).
  p = np.exp(log_p).reshape((NUM_CODES,) * LENGTH)
  codes = np.asarray(ALL)
  for l in range(LENGTH):
    prefix = p.sum(axis=tuple(range(l + 1, LENGTH)))  # [N] * (l + 1)
    conditional = prefix / prefix.sum(axis=-1, keepdims=True)
    softmax = np.exp(logits[:, l]) / np.exp(logits[:, l]).sum(-1, keepdims=True)
    want = conditional[tuple(codes[:, :l].T)] if l else np.broadcast_to(conditional, softmax.shape)
    np.testing.assert_allclose(softmax, want, rtol=1e-4, atol=1e-9)


def test_samples_follow_the_enumerated_distribution(params):
  num = 4000
  draws = np.asarray(jax.jit(lambda p: PRIOR.apply(
      {"params": p}, jax.random.key(1), num, method=PRIOR.sample))(params))
  p = np.exp(np.float64(PRIOR.apply({"params": params}, ALL, method=PRIOR.log_prob)))
  index = np.ravel_multi_index(draws.T, (NUM_CODES,) * LENGTH)
  frequency = np.bincount(index, minlength=len(p)) / num
  assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / num) + 1e-3)
  assert np.sum(p > 0.01) >= 5  # a test of more than one likely grid


def _smoke(name, tfds_dir, workdir, **model):
  import importlib.util
  import pathlib

  path = pathlib.Path(__file__).resolve().parents[2] / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("smoke")
  config.data.data_dir = tfds_dir
  config.train.num_steps = config.train.log_every = config.train.checkpoint_every = 4
  config.model.update(model)
  return config, loop.train_and_evaluate(config, workdir)


def _evaluate(workdir):
  """The run's evaluator, its final variables and their per-example results on the test split."""
  from jaxvae.config import load_config
  from jaxvae.eval.log_likelihood import Evaluator

  evaluator = Evaluator(load_config(os.path.join(workdir, "config.json")))
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  variables = evaluator.restore(checkpoints, checkpoints.resolve_step())
  checkpoints.close()
  return evaluator, variables, evaluator.run(variables)


def test_two_stages_train_evaluate_and_sample(tfds_dir, tmp_path):
  from jaxvae import data as data_lib

  first_dir, prior_dir = str(tmp_path / "vqvae"), str(tmp_path / "prior")
  _smoke("digits_vqvae", tfds_dir, first_dir)
  metrics = [json.loads(line) for line in open(os.path.join(first_dir, "metrics.jsonl"))]
  assert 0 < metrics[-1]["quantizer_codes_used"] <= 1
  config, second = _smoke("digits_vq_prior", tfds_dir, prior_dir, first_stage_workdir=first_dir)
  assert second["step"] == 4 and second["num_samples"] == 1

  evaluator, variables, results = _evaluate(prior_dir)
  np.testing.assert_allclose(results["log_px"].mean(), second["log_px"], rtol=1e-6)
  np.testing.assert_allclose(results["log_px"], results["elbo"])  # K=1: both are the bound
  # The bound by hand: the frozen stage's log p(x | z_q) + the prior's log p(codes).
  model, stage = evaluator.model, evaluator.model.stage
  x = jnp.asarray(next(data_lib.eval_batches(config, evaluator.data, 64))["image"])
  codes = stage.model.apply(stage.variables, x, method=stage.model.encode)
  log_px_given_z = stage.model.apply(stage.variables, x, codes, method=stage.model.log_likelihood)
  log_prior = model.apply(variables, codes.reshape(64, -1),
                          method=lambda m, c: m.prior.log_prob(c))
  np.testing.assert_allclose(results["log_px"][:64, 0], log_px_given_z + log_prior, rtol=1e-5)
  # The frozen stage is the first run's final checkpoint: its parameters and codebook state.
  reader = checkpoint_lib.Checkpoints(first_dir, read_only=True)
  first = reader.restore_variables(4, jax.tree.map(jnp.asarray, stage.variables))
  reader.close()
  assert set(first) == {"params", "codebook"}
  jax.tree.map(np.testing.assert_array_equal, first, stage.variables)
  png = sample_to_png(prior_dir, 16, str(tmp_path / "samples.png"))
  assert os.path.getsize(png) > 0
