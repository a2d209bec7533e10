"""2 processes x 2 devices on localhost see exactly the global batches of one process."""

import numpy as np

from jaxvae import data
from jaxvae.runtime.distributed import launch_local


def test_two_processes_see_the_single_process_batches(tmp_path, smoke_config, tfds_dir):
  out = str(tmp_path / "seen.npz")
  launch_local([out, str(tmp_path / "tfds")], num_processes=2, devices_per_process=2,
               timeout_s=240, module="tests.data.multiprocess_worker")
  seen = np.load(out)
  batches = data.train_batches(smoke_config, data.load_split(smoke_config.data, "train"))
  for step in (2, 3, 4):  # the workers resumed at step 2
    np.testing.assert_array_equal(seen[f"train_{step}_image"], batches[step]["image"])
    np.testing.assert_array_equal(seen[f"train_{step}_label"], batches[step]["label"])
  test = data.load_split(smoke_config.data, "test")
  for i, batch in enumerate(data.eval_batches(smoke_config, test, 64)):
    for key in ("image", "label", "id", "mask"):
      np.testing.assert_array_equal(seen[f"eval_{i}_{key}"], batch[key])
  assert sum(seen[f"eval_{i}_mask"].sum() for i in range(5)) == 300
