"""The train step, checkpoints, exact resumption, and 1 vs 8 devices."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvae import losses
from jaxvae.errors import UserError
from jaxvae import config as config_lib
from jaxvae.models import build_model
from jaxvae.runtime.checkpoint import Checkpoints
from jaxvae.train import make_optimizer, train_and_evaluate
from jaxvae.runtime import mesh as mesh_lib
from jaxvae.train import state as state_lib
from jaxvae.runtime.trained import abstract_variables, init_variables


def _vae(data_shape, **section):
  """A VAE built from its config section (`model.kind='vae'` with `section`'s values)."""
  model = config_lib.model_config("vae")
  model.update(section)
  return build_model(model, data_shape)


def _setup(smoke_config):
  model = _vae(data_shape=(8, 8, 1), latent_dim=4, hidden_sizes=(16,))
  optimizer, schedule = make_optimizer(smoke_config.train)
  state = state_lib.init_state(model, optimizer, (8, 8, 1), jax.random.key(0))
  return model, optimizer, schedule, state


def test_one_step_lowers_the_loss_on_a_fixed_batch(smoke_config):
  model, optimizer, schedule, state = _setup(smoke_config)
  images = (np.random.default_rng(0).random((16, 8, 8, 1)) < 0.3).astype(np.float32)
  step = jax.jit(state_lib.make_train_step(model, optimizer, schedule, smoke_config.train))
  key = jax.random.wrap_key_data(state.key)
  keys = jax.random.split(jax.random.fold_in(key, 0), (1, 16))  # the draws of step 0

  def loss(params):
    return -jnp.mean(losses.elbo(model.apply({"params": params}, images, keys,
                                             method=model.log_weights).values))

  new_state, metrics = step(state, {"image": images})
  np.testing.assert_allclose(metrics["loss"], loss(state.params), rtol=1e-6)
  assert float(loss(new_state.params)) < float(loss(state.params))
  assert int(new_state.step) == 1


def test_checkpoint_round_trip(tmp_path, smoke_config):
  _, _, _, state = _setup(smoke_config)
  mesh = mesh_lib.make_mesh()
  state = jax.device_put(state, mesh_lib.replicated(mesh))
  checkpoints = Checkpoints(str(tmp_path), max_to_keep=2)
  checkpoints.save(7, state)
  checkpoints.wait()
  restored = checkpoints.restore(7, jax.eval_shape(lambda: state))
  jax.tree.map(np.testing.assert_array_equal, restored.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, restored.opt_state, state.opt_state)
  assert restored.params["encoder"]["Dense_0"]["kernel"].sharding == mesh_lib.replicated(mesh)
  reader = Checkpoints(str(tmp_path), read_only=True)
  assert reader.resolve_step() == 7
  params = reader.restore_variables(7, {"params": state.params})["params"]
  jax.tree.map(np.testing.assert_array_equal, params, state.params)
  other = _vae(data_shape=(8, 8, 1), latent_dim=5, hidden_sizes=(16,))
  with pytest.raises(UserError, match="does not fit this model"):
    reader.restore_variables(7, init_variables(other, (8, 8, 1), jax.random.key(0)))
  with pytest.raises(UserError, match="no checkpoint for step 3"):
    reader.resolve_step(3)


def _final_params(workdir, config):
  from jaxvae.data import load_split
  from jaxvae.models import build_model

  model = build_model(config.model, load_split(config.data, "train").image_shape)
  reader = Checkpoints(workdir, read_only=True)
  return reader.restore_variables(reader.resolve_step(), abstract_variables(
      model, (8, 8, 1), mesh_lib.replicated(mesh_lib.make_mesh())))["params"]


def test_eight_devices_give_the_parameters_of_one(tmp_path, smoke_config):
  assert jax.device_count() == 8
  smoke_config.train.num_steps = 12
  results = {}
  for devices, fsdp in ((1, 1), (8, 1), (8, 4)):  # 8 = data parallel; (8, 4) = 2 x 4 FSDP.
    smoke_config.train.num_devices, smoke_config.train.fsdp_devices = devices, fsdp
    train_and_evaluate(smoke_config, str(tmp_path / f"{devices}_{fsdp}"))
    results[devices, fsdp] = _final_params(str(tmp_path / f"{devices}_{fsdp}"), smoke_config)
  for other in ((8, 1), (8, 4)):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
                 results[1, 1], results[other])


def test_fsdp_shards_params_and_moments_but_not_the_counters(smoke_config):
  _, optimizer, _, state = _setup(smoke_config)
  mesh = mesh_lib.make_mesh(8, fsdp_devices=4)
  assert dict(mesh.shape) == {"data": 2, "fsdp": 4}
  shardings = mesh_lib.state_shardings(jax.eval_shape(lambda: state), mesh)
  kernel = shardings.params["encoder"]["Dense_0"]["kernel"]  # [64, 16]: the larger axis is split
  assert kernel.spec == jax.sharding.PartitionSpec("fsdp")
  assert shardings.opt_state[0].mu["encoder"]["Dense_0"]["kernel"].spec == kernel.spec
  assert shardings.step.spec == jax.sharding.PartitionSpec() == shardings.key.spec
  sharded = jax.device_put(state, shardings)
  assert sharded.params["encoder"]["Dense_0"]["kernel"].addressable_shards[0].data.shape == (16, 16)
  with pytest.raises(UserError, match="fsdp_devices=3 must divide"):
    mesh_lib.make_mesh(8, fsdp_devices=3)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, smoke_config):
  smoke_config.train.checkpoint_every = 10
  smoke_config.train.num_steps = 20
  train_and_evaluate(smoke_config, str(tmp_path / "straight"))
  smoke_config.train.num_steps = 10
  train_and_evaluate(smoke_config, str(tmp_path / "resumed"))
  smoke_config.train.num_steps = 20
  record = train_and_evaluate(smoke_config, str(tmp_path / "resumed"))
  assert record["step"] == 20
  params = _final_params(str(tmp_path / "straight"), smoke_config)
  jax.tree.map(np.testing.assert_array_equal, params,
               _final_params(str(tmp_path / "resumed"), smoke_config))
  # The last log line's parameter norm is that of the final parameters (NumPy, float64).
  with open(tmp_path / "straight" / "metrics.jsonl") as f:
    last = [json.loads(line) for line in f if '"param_norm"' in line][-1]
  norm = np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for a in jax.tree.leaves(params)))
  assert last["step"] == 20
  np.testing.assert_allclose(last["param_norm"], norm, rtol=1e-5)
