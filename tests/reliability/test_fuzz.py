"""Property-based fuzzing: the npz loader and the config parser accept good input and turn any bad
input into a `UserError`, never another exception."""

import string

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxvae import config as config_lib
from jaxvae import data
from jaxvae.cli import _parse
from jaxvae.errors import UserError

_DTYPES = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64,
                           np.bool_, np.complex64])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=st.dictionaries(
    st.sampled_from(["train", "test", "train_labels", "other"]),
    hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=4)),
    max_size=4))
def test_npz_loader_never_crashes(arrays, tmp_path_factory):
  path = tmp_path_factory.mktemp("fuzz") / "d.npz"
  np.savez(path, **arrays)
  config = config_lib.get_config("smoke")
  config.data.source, config.data.path = "npz", str(path)
  try:
    split = data.load_split(config.data, "train")
  except UserError:
    return
  images = arrays["train"]
  assert len(split.source) == len(images) > 0
  first = split.source[0]["image"]
  assert first.shape == split.image_shape and np.all(np.isfinite(first.astype(np.float64)))
  assert 0 <= first.min() and first.max() <= split.max_value


_KEYS = [key for key, _ in config_lib._flatten(config_lib.get_config())] + ["model.nope", "zzz"]
_VALUES = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str),
                    st.text(string.printable, max_size=12), st.sampled_from(
                        ["True", "False", "()", "(1,2)", "[3]", "none", "elbo", "iwae", "-0"]))


@settings(max_examples=150, deadline=None)
@given(overrides=st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), max_size=4))
def test_config_parser_never_crashes(overrides):
  argv = ["jaxvae", "train", "--workdir=/tmp/unused", "--config=configs/digits_vae.py:smoke"]
  argv += [f"--config.{key}={value}" for key, value in overrides]
  try:
    _, _, config = _parse(argv)
  except UserError:
    return
  config_lib.validate(config)  # whatever parsed is a valid config
