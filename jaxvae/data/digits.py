"""The embedded dataset: the 8x8 handwritten digits that ship with scikit-learn, as a tfds builder.

1,797 grayscale images with 17 intensity levels (0..16) and labels 0..9, vendored in
`digits.csv.gz` (the copy in scikit-learn, BSD-3; UCI Optical Recognition of Handwritten Digits,
Alpaydin & Kaynak 1998, CC BY 4.0). Fixed split: the first 1,497 rows are `train`, the last 300
`test`. Prepared once to ArrayRecord under the tfds data dir and read through `tfds` data sources,
the same path as any other tensorflow-datasets dataset; no network needed.
"""

import gzip
import importlib.resources

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 1_497
MAX_VALUE = 16


def _load_csv() -> tuple[np.ndarray, np.ndarray]:
  with importlib.resources.files("jaxvae.data").joinpath("digits.csv.gz").open("rb") as f:
    table = np.loadtxt(gzip.open(f), delimiter=",", dtype=np.uint8)
  return table[:, :64].reshape(-1, 8, 8, 1), table[:, 64].astype(np.int64)


class EmbeddedDigits(tfds.core.GeneratorBasedBuilder):
  """tfds builder `embedded_digits`: 8x8x1 uint8 images in 0..16 and labels 0..9."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 1,497 train and 300 test images."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="8x8 handwritten digits (UCI), 17 gray levels; the copy in scikit-learn.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        metadata=tfds.core.MetadataDict(max_value=MAX_VALUE),
        citation="Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the data ships with the package.
    images, labels = _load_csv()
    return {
        "train": self._generate_examples(images[:NUM_TRAIN], labels[:NUM_TRAIN], 0),
        "test": self._generate_examples(images[NUM_TRAIN:], labels[NUM_TRAIN:], NUM_TRAIN),
    }

  def _generate_examples(self, images, labels, offset):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield offset + i, {"image": image, "label": int(label)}
