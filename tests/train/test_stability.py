"""The train step's guards against bad updates: the adaptive skip threshold (the gradient norm's
running statistics against a NumPy float64 recomputation from the logged norms), the skip records,
the learning-rate scale of rollbacks (against a smaller learning rate), and checkpoints written
before the `guard` item existed."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxvae import config as config_lib
from jaxvae.models import LogWeights, build_model
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.train import loop
from jaxvae.train import state as state_lib

_DIM = 4


class _Linear(nn.Module):
  """`log p(x | z) = <w, x>` and nothing else: the loss `-mean_b <w, x_b>` has the gradient
  `-mean_b x_b` whatever `w` is, so each batch sets the gradient norm exactly."""

  data_shape: tuple[int, ...] = (_DIM,)

  @nn.compact
  def log_weights(self, x, keys, labels=None):
    w = self.param("w", nn.initializers.zeros, self.data_shape)
    log_likelihood = jnp.broadcast_to(x @ w, keys.shape)
    zero = jnp.zeros(keys.shape)
    return LogWeights(log_likelihood, zero, zero)


def _batches(norms: np.ndarray, batch_size: int = 4) -> dict:
  """`[S, B, D]` batches whose gradient norm at step s is `norms[s]`."""
  images = np.zeros((len(norms), batch_size, _DIM), np.float32)
  images[:, :, 0] = norms[:, None]
  return {"image": images}


def _run(train, norms: np.ndarray):
  """The final state and `[S]` metrics of `len(norms)` steps of the linear model, in one call."""
  model = _Linear()
  optimizer, schedule = state_lib.make_optimizer(train)
  state = state_lib.init_state(model, optimizer, (_DIM,), jax.random.key(0))
  steps = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train, chunked=True))
  state, metrics = steps(state, _batches(norms))
  return state, jax.tree.map(np.asarray, metrics)


def _oracle(norms: np.ndarray, sigmas: float, decay: float):
  """Float64: per step, whether the update is skipped and the running `(mean, std)` after it; the
  statistics by their explicit weighted sums over the norms fed so far, each winsorized at the
  threshold of its step."""
  fed, skipped, means, stds = [], [], [], []
  mean = std = 0.0
  for norm in norms:
    threshold = mean + sigmas * std if len(fed) >= round(1 / (1 - decay)) else np.inf
    assert abs(norm - threshold) > 1e-4 * norm  # No decision is a float32 tie.
    skipped.append(norm > threshold)
    fed.append(min(norm, threshold))
    x = np.array(fed)
    weights = (1 - decay) * decay ** np.arange(len(x) - 1, -1, -1) / (1 - decay ** len(x))
    mean = float(np.sum(weights * x))
    std = float(np.sqrt(np.sum(weights * (x - mean) ** 2)))
    means.append(mean)
    stds.append(std)
  return np.array(skipped), np.array(means), np.array(stds)


def test_the_adaptive_threshold_follows_a_drift_that_stalls_the_fixed_one_and_skips_a_spike(
    smoke_config):
  rng = np.random.default_rng(0)
  steps = 300
  norms = (1 + 0.004 * np.arange(steps)) * (1 + 0.05 * rng.standard_normal(steps))  # 1 -> 2.2
  norms[200] = 1e4  # One spike.
  norms = norms.astype(np.float32)
  train = smoke_config.train

  train.skip_grad_norm = 1.5  # VDVAE's failure: a fixed threshold the norm drifts past.
  fixed, fixed_metrics = _run(train, norms)
  assert int(fixed.consecutive_skips) > 60 and int(fixed.guard.longest_skip_run) > 60
  np.testing.assert_array_equal(fixed_metrics["skipped"], norms > 1.5)
  assert "grad_norm_mean" not in fixed_metrics  # Statistics only with the adaptive threshold.

  train.skip_grad_norm, train.skip_grad_norm_sigmas, train.grad_norm_stats_decay = 0.0, 6.0, 0.9
  state, metrics = _run(train, norms)
  skipped, means, stds = _oracle(np.float64(norms), 6.0, 0.9)
  np.testing.assert_array_equal(metrics["skipped"], skipped)
  assert np.flatnonzero(skipped).tolist() == [200]  # The spike, and only the spike.
  assert int(state.skipped_updates) == 1 and int(state.guard.longest_skip_run) == 1
  np.testing.assert_allclose(metrics["grad_norm"], norms, rtol=1e-6)
  np.testing.assert_allclose(metrics["grad_norm_mean"], means, rtol=1e-5)
  np.testing.assert_allclose(metrics["grad_norm_std"], stds, rtol=1e-4)
  assert means[200] < 1.05 * means[199]  # Fed the threshold, not 1e4.
  assert int(state.guard.grad_norm_count) == steps
  np.testing.assert_allclose(float(state.guard.grad_norm_mean), means[-1], rtol=1e-5)


def test_a_level_shift_is_followed_after_a_few_skips(smoke_config):
  rng = np.random.default_rng(1)
  norms = np.where(np.arange(200) < 100, 1.0, 3.0) * (1 + 0.05 * rng.standard_normal(200))
  train = smoke_config.train
  train.skip_grad_norm_sigmas, train.grad_norm_stats_decay = 6.0, 0.9
  _, metrics = _run(train, norms.astype(np.float32))
  skipped = np.flatnonzero(metrics["skipped"])
  assert len(skipped) and skipped[0] == 100 and skipped[-1] < 110  # Then every update applies.
  np.testing.assert_array_equal(metrics["skipped"], _oracle(norms.astype(np.float32).astype(
      np.float64), 6.0, 0.9)[0])


def test_skip_rate_and_longest_skip_run_are_summarized():
  skipped = [np.array([0, 1, 1]), np.array([1, 0])]
  longest = [np.array([0, 1, 2]), np.array([3, 3])]
  summary = loop.summarize([{"skipped": s, "longest_skip_run": r, "loss": np.ones(len(s))}
                            for s, r in zip(skipped, longest)])
  assert summary["skip_rate"] == 0.6 and summary["skipped_in_interval"] == 3
  assert summary["longest_skip_run"] == 3


@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adamw", 0.1)])
def test_the_learning_rate_scale_equals_a_smaller_learning_rate(smoke_config, optimizer,
                                                                weight_decay):
  train = smoke_config.train
  train.optimizer, train.weight_decay, train.clip_grad_norm = optimizer, weight_decay, 1.0
  model = config_lib.model_config("vae")
  model.update(latent_dim=4, hidden_sizes=(16,))
  model = build_model(model, (8, 8, 1))
  images = (np.random.default_rng(0).random((3, 16, 8, 8, 1)) < 0.3).astype(np.float32)

  def run(learning_rate, scale):
    train.learning_rate = learning_rate
    optimizer, schedule = state_lib.make_optimizer(train)
    state = state_lib.init_state(model, optimizer, (8, 8, 1), jax.random.key(0))
    state = state.replace(guard=state.guard.replace(learning_rate_scale=jnp.float32(scale)))
    steps = jax.jit(state_lib.make_train_step(model, optimizer, schedule, train, chunked=True))
    return steps(state, {"image": images})

  scaled, scaled_metrics = run(4e-3, 0.25)
  plain, plain_metrics = run(1e-3, 1.0)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               scaled.params, plain.params)
  np.testing.assert_allclose(scaled_metrics["learning_rate"], plain_metrics["learning_rate"],
                             rtol=1e-6)


def test_a_checkpoint_written_without_the_guard_restores_with_a_fresh_one(tmp_path,
                                                                         smoke_config):
  optimizer, _ = state_lib.make_optimizer(smoke_config.train)
  state = state_lib.init_state(_Linear(), optimizer, (_DIM,), jax.random.key(0))
  state = state.replace(step=jnp.int32(7), skipped_updates=jnp.int32(2),
                        params={"w": jnp.arange(_DIM, dtype=jnp.float32)})
  directory = str(tmp_path / "checkpoints")
  old = ocp.CheckpointManager(directory, item_names=("params", "opt_state", "meta"))
  meta = {name: getattr(state, name) for name in ("step", "key", "skipped_updates",
                                                  "consecutive_skips")}
  old.save(7, args=ocp.args.Composite(params=ocp.args.StandardSave(state.params),
                                      opt_state=ocp.args.StandardSave(state.opt_state),
                                      meta=ocp.args.StandardSave(meta)))
  old.wait_until_finished()
  old.close()  # The layout of the version before the guard.

  spent = state.guard.replace(rollbacks=jnp.int32(3), learning_rate_scale=jnp.float32(0.125))
  target = jax.eval_shape(lambda: state).replace(guard=state_lib.Guard.fresh())
  restored = Checkpoints(str(tmp_path), read_only=True).restore(7, target)
  jax.tree.map(np.testing.assert_array_equal, restored, state)  # The guard: fresh.
  assert float(restored.guard.learning_rate_scale) == 1.0 and int(restored.guard.rollbacks) == 0

  checkpoints = Checkpoints(str(tmp_path / "new"))  # The guard saved and restored bit for bit.
  checkpoints.save(7, state.replace(guard=spent))
  checkpoints.wait()
  again = checkpoints.restore(7, target)
  jax.tree.map(np.testing.assert_array_equal, again.guard, spent)
