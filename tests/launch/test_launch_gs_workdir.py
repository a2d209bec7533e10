"""A gs:// workdir goes through path APIs that handle Cloud Storage (etils.epath): config.json, the
workdir check, metrics and the eval ledger (JSONL), image grids, and the checkpoint directory.

Cloud Storage is faked by an fsspec file system that keeps `gs://BUCKET/PATH` under a temporary
directory (epath reaches gs:// through fsspec when TensorFlow is absent); with plain `open` or
`os.path` these calls would read and write a local `gs:` directory instead, which the test checks
is never created. Orbax's array data (tensorstore) and TensorBoard's gs:// writer are not faked.
"""

import importlib
import json
import os

import fsspec
import numpy as np
import pytest
from etils.epath import backend as epath_backend
from fsspec.implementations.local import LocalFileSystem
from PIL import Image

from jaxvae import config as config_lib
from jaxvae.errors import UserError
from jaxvae.eval import job
from jaxvae.runtime import checkpoint as checkpoint_lib
from jaxvae.runtime import workdir as workdir_lib
from jaxvae.train import loop
from jaxvae.runtime.images import save_image_grid
from jaxvae.runtime.metrics import append_text, read_jsonl

RUN = "gs://bucket/runs/vae"


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  """Where the fake Cloud Storage keeps gs://bucket."""
  root = tmp_path / "gcs"
  root.mkdir()

  class FakeGCS(LocalFileSystem):
    cachable = False

    def __init__(self, *args, finalize_on_close=True, **kwargs):
      super().__init__(*args, **kwargs)

    @classmethod
    def _strip_protocol(cls, path):
      path = str(path)
      return str(root / path[len("gs://"):]) if path.startswith("gs://") else path

  for protocol in ("gs", "gcs"):
    monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, protocol, FakeGCS)
  monkeypatch.setattr(epath_backend.fsspec_backend, "_get_filesystem",
                      lambda name: fsspec.filesystem(name))
  monkeypatch.chdir(tmp_path)  # A wrong, local `gs:` directory would appear here.
  yield root / "bucket"
  assert not os.path.exists(tmp_path / "gs:")


def test_config_and_workdir_check_on_gs(bucket, smoke_config):
  loop.prepare_workdir(smoke_config, RUN)
  saved = bucket / "runs" / "vae" / "config.json"
  assert json.loads(saved.read_text()) == json.loads(smoke_config.to_json())
  assert config_lib.load_config(f"{RUN}/config.json").to_dict() == \
      config_lib.load_config(str(saved)).to_dict()
  (bucket / "runs" / "vae" / "checkpoints" / "10").mkdir(parents=True)
  smoke_config.model.latent_dim += 1
  with pytest.raises(UserError, match="holds checkpoints of a different run: model.latent_dim"):
    loop.prepare_workdir(smoke_config, RUN)
  with pytest.raises(UserError, match="is a file"):
    loop.prepare_workdir(smoke_config, f"{RUN}/config.json")


def test_metrics_and_eval_ledger_on_gs(bucket):
  ledger = workdir_lib.eval_path(RUN)
  assert ledger == f"{RUN}/eval/log_likelihood.jsonl" and read_jsonl(ledger) == []
  records = [{"step": 10, "log_px": -80.5}, {"step": 20, "log_px": -79.25}]
  for record in records:
    append_text(ledger, json.dumps(record) + "\n")
  assert read_jsonl(ledger) == records
  local = bucket / "runs" / "vae" / "eval" / "log_likelihood.jsonl"
  assert [json.loads(line) for line in local.read_text().splitlines()] == records


def test_image_grid_on_gs(bucket):
  images = np.random.default_rng(0).uniform(size=(4, 3, 3, 1))
  pixels = save_image_grid(images, f"{RUN}/images/samples.png", scale=1)
  stored = np.asarray(Image.open(bucket / "runs" / "vae" / "images" / "samples.png"))
  np.testing.assert_array_equal(stored, pixels[..., 0])


def test_checkpoint_directory_and_eval_job_listing_on_gs(bucket):
  assert job._finalized_steps(RUN) == []  # No checkpoints directory yet: nothing to list.
  checkpoints = checkpoint_lib.Checkpoints(RUN, read_only=True)
  try:
    assert checkpoints.directory == f"{RUN}/checkpoints"
    assert not checkpoints._has(10, "ema_params")  # Items are found through epath on gs://
    (bucket / "runs" / "vae" / "checkpoints" / "10" / "ema_params").mkdir(parents=True)
    assert checkpoints._has(10, "ema_params")
  finally:
    checkpoints.close()
