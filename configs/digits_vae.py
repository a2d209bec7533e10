"""The embedded default: a VAE on the 8x8 digits (dynamically binarized, Bernoulli likelihood).

    jaxvae train --config=configs/digits_vae.py --workdir=runs/digits_vae
    jaxvae train --config=configs/digits_vae.py:smoke --workdir=/tmp/smoke
"""

from jaxvae.config import get_config  # noqa: F401  (the default config is this experiment)
