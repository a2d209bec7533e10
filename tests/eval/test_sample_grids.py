"""The image grids shared by `jaxvae sample` and the trainer, against direct decodes of latents."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxvae import config as config_lib
from jaxvae.cli import main
from jaxvae.errors import UserError
from jaxvae.models import build_model
from jaxvae.runtime import images

SHAPE, LATENT = (4, 4, 1), 3


def _build(kind="vae", **section):
  model = config_lib.model_config(kind)
  model.update(section)
  return build_model(model, SHAPE)


def _model(**kwargs):
  kind = "cvae" if "num_classes" in kwargs else "vae"
  model = _build(kind, latent_dim=LATENT, hidden_sizes=(8,), **kwargs)
  x = jax.random.uniform(jax.random.key(0), (6,) + SHAPE)
  labels = jnp.arange(6) % 3
  variables = model.init(jax.random.key(1), x, jax.random.split(jax.random.key(2), (1, 6)),
                         labels)
  return model, variables, x, labels


def _decoded(model, params, z, labels=None):
  """Oracle: Bernoulli means sigmoid(logits) of the decoder at `z` (and `one_hot(labels)` for a
  conditional VAE), reshaped to images."""
  def logits(module, z, labels):
    condition = None if labels is None else jax.nn.one_hot(labels, module.num_classes)
    return module.decoder(z, condition)[..., 0]
  return np.asarray(jax.nn.sigmoid(model.apply(params, z, labels, method=logits))).reshape(
      (-1,) + SHAPE)


def _code(model, params, x, labels=None):
  """Oracle: the posterior mean of a diagonal Gaussian q(z | x), `DiagGaussian(mean, log_var)`."""
  return np.asarray(model.apply(params, x, labels, method=model.posterior_parameters).mean)


def test_temperature_zero_decodes_the_prior_mean_and_t_scales_the_noise():
  model, params, _, _ = _model()
  key = jax.random.key(3)
  cold = jax.jit(lambda p: images.samples(model, p, key, 5, temperature=0.0))(params)
  assert cold.shape == (5,) + SHAPE
  np.testing.assert_allclose(cold, _decoded(model, params, jnp.zeros((5, LATENT))), atol=1e-6)
  warm = jax.jit(lambda p: images.samples(model, p, key, 5, temperature=0.5))(params)
  eps = jax.random.normal(key, (5, LATENT))
  np.testing.assert_allclose(warm, _decoded(model, params, 0.5 * eps), atol=1e-6)
  np.testing.assert_allclose(images.samples(model, params, key, 5, temperature=1.0),
                             _decoded(model, params, eps), atol=1e-6)


def test_class_conditional_samples_decode_with_the_label():
  model, params, _, _ = _model(num_classes=3)
  labels = jnp.full((4,), 2)
  out = images.samples(model, params, jax.random.key(4), 4, temperature=0.0, labels=labels)
  np.testing.assert_allclose(out, _decoded(model, params, jnp.zeros((4, LATENT)), labels),
                             atol=1e-6)
  other = _decoded(model, params, jnp.zeros((4, LATENT)), jnp.zeros(4, int))
  assert np.abs(np.asarray(out) - other).max() > 1e-4  # The label changes the images.


def test_interpolation_rows_run_from_one_code_to_the_other():
  model, params, x, _ = _model()
  steps = 5
  grid = jax.jit(lambda p: images.interpolations(model, p, x[0:4:2], x[1:4:2], steps))(params)
  assert grid.shape == (2 * steps,) + SHAPE
  grid = np.asarray(grid).reshape((2, steps) + SHAPE)
  z0, z1 = _code(model, params, x[0:4:2]), _code(model, params, x[1:4:2])
  np.testing.assert_allclose(grid[:, 0], _decoded(model, params, z0), atol=1e-6)
  np.testing.assert_allclose(grid[:, -1], _decoded(model, params, z1), atol=1e-6)
  np.testing.assert_allclose(grid[:, 2], _decoded(model, params, (z0 + z1) / 2), atol=1e-6)


def test_traversals_sweep_one_dimension_per_row():
  model, params, x, _ = _model()
  steps, radius = 4, 2.0
  grid = jax.jit(lambda p: images.traversals(model, p, x[:1], steps, radius, LATENT))(params)
  assert grid.shape == (LATENT * steps,) + SHAPE
  code = _code(model, params, x[:1])[0]
  z = np.tile(code, (LATENT, steps, 1))
  for d in range(LATENT):
    z[d, :, d] = np.linspace(-radius, radius, steps)
  np.testing.assert_allclose(grid, _decoded(model, params, z.reshape(-1, LATENT)), atol=1e-6)


def test_reconstructions_sit_next_to_their_inputs():
  model, params, x, _ = _model()
  grid = np.asarray(images.reconstructions(model, params, x[:3]))
  assert grid.shape == (6,) + SHAPE
  np.testing.assert_array_equal(grid[0::2], x[:3])
  np.testing.assert_allclose(grid[1::2], _decoded(model, params, _code(model, params, x[:3])),
                             atol=1e-6)


def test_temperature_rows_scale_the_same_noise():
  model, params, _, _ = _model()
  key, temperatures = jax.random.key(5), (1.0, 0.5, 0.0)
  grid = jax.jit(lambda p: images.temperature_samples(model, p, key, 3, temperatures))(params)
  assert grid.shape == (9,) + SHAPE
  eps = jax.random.normal(key, (3, LATENT))
  for row, t in enumerate(temperatures):
    np.testing.assert_allclose(grid[3 * row:3 * row + 3], _decoded(model, params, t * eps),
                               atol=1e-6)


def _vdvae():
  """A tiny VDVAE (3 groups at resolutions 1, 4, 4) with parameters drawn N(0, 0.3^2): not its
  initialization, whose zero prior convolutions would make every prior N(0, I) (and whose
  compilation takes longer than the whole test)."""
  model = _build("vdvae", encoder_blocks="4x1,4d4,1x1", decoder_blocks="1x1,4m1,4x1", width=8,
                 latent_channels=2)
  x = (jax.random.uniform(jax.random.key(0), (5,) + SHAPE) > 0.5).astype(jnp.float32)
  shapes = jax.eval_shape(model.init, jax.random.key(1), x,
                          jax.random.split(jax.random.key(2), (1, 5)))["params"]
  rng = np.random.default_rng(3)
  params = jax.tree.map(lambda s: jnp.asarray(0.3 * rng.standard_normal(s.shape), s.dtype), shapes)
  return model, {"params": params}, x


def test_group_counts_double_up_to_every_group():
  assert images.group_counts(1) == (0, 1)
  assert images.group_counts(3) == (0, 1, 2, 3)
  assert images.group_counts(8) == (0, 1, 2, 4, 8)
  assert images.group_counts(43) == (0, 1, 2, 4, 8, 16, 32, 43)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_group_columns_run_from_a_prior_sample_to_the_reconstruction(temperature):
  """Column n = 0 is the prior's sample with the same key, n = G the reconstruction at q's means
  (whatever the key); in between, the top n groups follow x and the rest the key."""
  model, variables, x = _vdvae()
  counts = images.group_counts(model.num_groups)
  assert model.num_groups == 3 and counts == (0, 1, 2, 3)
  draw = jax.jit(lambda v, key: images.group_reconstructions(model, v, x, key, counts,
                                                             temperature))
  key = jax.random.key(4)
  grid = np.asarray(draw(variables, key)).reshape((5, 1 + len(counts)) + SHAPE)
  np.testing.assert_array_equal(grid[:, 0], x)
  prior = jax.jit(lambda v: model.apply(v, key, 5, None, temperature, method=model.sample))
  np.testing.assert_allclose(grid[:, 1], prior(variables), atol=1e-6)
  reconstruct = jax.jit(lambda v: model.apply(v, x, method=model.reconstruct))
  np.testing.assert_allclose(grid[:, -1], reconstruct(variables), atol=1e-6)
  other = np.asarray(draw(variables, jax.random.key(5))).reshape(grid.shape)
  np.testing.assert_allclose(other[:, -1], grid[:, -1], atol=1e-6)  # no prior draw left at n = G
  for column in range(1, len(counts)):  # n < G: the groups below the n-th come from the key
    assert np.abs(other[:, column] - grid[:, column]).max() > 1e-3, column
  for column in range(2, len(counts)):  # each column differs from the one before
    assert np.abs(grid[:, column] - grid[:, column - 1]).max() > 1e-3, column


def test_image_writer_draws_the_group_and_temperature_grids(tmp_path, smoke_config):
  """The trainer's writer (`make_image_writer`) adds both grids for a VDVAE, one column per
  count of groups plus the originals, one row per temperature."""
  from jaxvae.runtime import mesh as mesh_lib

  model, variables, x = _vdvae()
  mesh = mesh_lib.make_mesh(1)
  originals = mesh_lib.global_batch({"image": np.asarray(x[:4]), "label": np.zeros(4, np.int32)},
                                    mesh)
  show = images.make_image_writer(model, smoke_config, mesh, str(tmp_path), originals)
  show(variables, 7)
  width = lambda columns: 4 * (columns * (SHAPE[1] + 1) + 1)  # noqa: E731
  groups = Image.open(tmp_path / "images" / "groups_00000007.png")
  assert groups.size == (width(5), width(4))  # originals and n = 0, 1, 2, 3; 4 test images
  temperatures = Image.open(tmp_path / "images" / "temperatures_00000007.png")
  assert temperatures.size == (width(images.NUM_PER_TEMPERATURE), width(len(images.TEMPERATURES)))


def test_grids_that_a_model_cannot_draw_are_clear_errors():
  model, params, x, _ = _model(prior="mixture")
  with pytest.raises(UserError, match="model.prior='standard_normal'"):
    images.samples(model, params, jax.random.key(0), 2, temperature=0.5)
  with pytest.raises(UserError, match=">= 0"):
    images.check_temperature(model, -1.0)
  with pytest.raises(UserError, match="choose 1..3"):
    images.traversals(model, params, x[:1], 3, 1.0, num_dims=4)
  hvae = _build("hvae", latent_dims=(2, 2))
  with pytest.raises(UserError, match="one latent vector"):
    images.interpolations(hvae, {}, x[:1], x[1:2], 3)
  with pytest.raises(UserError, match="LATENT_GROUPS"):
    images.group_reconstructions(hvae, {}, x[:1], jax.random.key(0), (0, 1))


def test_grid_pixels_lay_out_rows_with_borders():
  pixels = images.grid_pixels(np.zeros((7, 2, 3, 1)), columns=3, scale=2)
  assert pixels.shape == (2 * (3 * 3 + 1), 2 * (3 * 4 + 1), 1)
  assert pixels[0, 0, 0] == 255 and pixels[2, 2, 0] == 0 and pixels[-3, -3, 0] == 255  # 7 of 9


@pytest.fixture(scope="module")
def trained_cvae(tmp_path_factory, tfds_dir):
  workdir = str(tmp_path_factory.mktemp("cvae"))
  main(["jaxvae", "train", f"--workdir={workdir}", "--config=configs/digits_cvae.py:smoke",
        f"--config.data.data_dir={tfds_dir}", "--config.train.image_every=5",
        "--config.train.image_temperature=0.5", "--config.train.num_steps=10"])
  return workdir


def test_training_writes_every_grid_at_the_image_interval(trained_cvae):
  names = set(os.listdir(os.path.join(trained_cvae, "images")))
  for kind in ("samples", "temperatures", "reconstructions", "interpolations", "traversals"):
    assert {f"{kind}_00000005.png", f"{kind}_00000010.png"} <= names, kind
  traversal = Image.open(os.path.join(trained_cvae, "images", "traversals_00000010.png"))
  assert traversal.size == (4 * (images.STEPS * 9 + 1), 4 * (8 * 9 + 1))  # latent_dim 8 rows
  events = os.listdir(os.path.join(trained_cvae, "tensorboard", "images"))
  assert events and all(name.startswith("events.out.tfevents") for name in events)


@pytest.mark.parametrize("kind, flags, size", [
    ("samples", ["--num=10", "--label=3", "--temperature=0"], (4 * 37, 4 * 28)),
    ("temperatures", ["--num=3"], (4 * 28, 4 * 73)),
    ("reconstructions", ["--num=4"], (4 * 73, 4 * 10)),
    ("interpolations", ["--images=0,1,2,3", "--steps=5"], (4 * 46, 4 * 19)),
    ("traversals", ["--num=3", "--images=2", "--steps=4"], (4 * 37, 4 * 28)),
])
def test_sample_cli_writes_each_kind(trained_cvae, tmp_path, kind, flags, size):
  out = str(tmp_path / f"{kind}.png")
  main(["jaxvae", "sample", f"--workdir={trained_cvae}", f"--kind={kind}", f"--out={out}", *flags])
  assert Image.open(out).size == size


@pytest.mark.parametrize("flags, message", [
    (["--kind=pictures"], "--kind='pictures'"),
    (["--kind=interpolations", "--images=0,1,2"], "pairs"),
    (["--label=10"], "label in 0..9"),
    (["--kind=reconstructions", "--num=301"], "has 300 images"),
    (["--kind=traversals", "--steps=1"], "--steps must be >= 2"),
    (["--kind=groups"], "LATENT_GROUPS"),
])
def test_sample_cli_refuses_impossible_grids(trained_cvae, tmp_path, capsys, flags, message):
  out = tmp_path / "x.png"
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", "sample", f"--workdir={trained_cvae}", f"--out={out}", *flags])
  assert exit_info.value.code == 2 and message in capsys.readouterr().err
  assert not out.exists()


@pytest.mark.parametrize("overrides, message", [
    ({"image_every": 7}, "multiple of train.log_every=5"),
    ({"image_temperature": -0.5}, "train.image_temperature"),
])
def test_config_rejects_image_keys(smoke_config, overrides, message):
  from jaxvae.config import validate

  for key, value in overrides.items():
    smoke_config.train[key] = value
  with pytest.raises(UserError, match=message):
    validate(smoke_config)


def test_trainer_rejects_an_image_temperature_the_prior_cannot_take(smoke_config, tmp_path):
  """A temperature other than 1 needs capability TEMPERATURE (an N(0, I) prior): the trainer
  refuses a mixture prior's before it trains (the model, not the config, knows its prior)."""
  from jaxvae.train import train_and_evaluate

  smoke_config.train.image_temperature = 0.5
  smoke_config.model.prior = "mixture"
  with pytest.raises(UserError, match="model.prior='standard_normal'"):
    train_and_evaluate(smoke_config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")
