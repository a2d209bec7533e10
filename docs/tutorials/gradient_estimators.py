"""Tutorial 8: tighter bounds that train well. The IWAE bound's encoder gradient loses its
signal as K grows; doubly reparameterized gradients (DReG) keep it. Measured on a linear-Gaussian
model, with `jaxvae.train.diagnostics.snr_against_k`."""

import jax
import numpy as np

from docs.tutorials import common
from jaxvae.losses import estimators
from jaxvae.models.linear_gaussian import LinearGaussian, variables_near_posterior
from jaxvae.train import diagnostics

NAME = "gradient_estimators"
OBJECTIVES = {"IWAE": "iwae", "IWAE-DReG": "iwae_dreg", "ELBO (K samples)": "elbo"}


def run(out_dir: str, tiny: bool = False) -> dict:
  ks, draws = ((1, 10, 100), 40) if tiny else ((1, 10, 100, 1000), 400)
  rng = np.random.default_rng(0)
  w = rng.normal(size=(20, 5)) / np.sqrt(5)
  b = rng.normal(size=20)
  x = (rng.normal(size=(16, 5)) @ w.T + b + rng.normal(size=(16, 20))).astype(np.float32)
  model = LinearGaussian((20,), 5, 1.0)
  curves = diagnostics.snr_against_k(model, variables_near_posterior(w, b, 1.0, offset=0.05),
                                     {"image": x}, OBJECTIVES, ks, jax.random.key(0), draws)

  fig, axes = common.figure(columns=2, width=4.6)
  for ax, part in zip(axes[0], ("encoder", "decoder")):
    for label, curve in curves.items():
      ax.plot(curve["K"], curve[part], "o-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("K (samples per example)")
    ax.set_ylabel("gradient SNR")
    ax.set_title(f"{part}: {'inference' if part == 'encoder' else 'generative'} network")
    ax.legend(fontsize=8)
  image = common.save(fig, out_dir, NAME)

  iwae, dreg = curves["IWAE"]["encoder"], curves["IWAE-DReG"]["encoder"]
  rows = "\n".join(f"| {k} | {i:.3f} | {d:.3f} | {e:.3f} | {curves['IWAE']['decoder'][n]:.3f} |"
                   for n, (k, i, d, e) in enumerate(zip(ks, iwae, dreg,
                                                        curves["ELBO (K samples)"]["encoder"])))
  common.write_page(out_dir, NAME, f"""
# Tighter bounds that train well: DReG, STL, MIWAE, CIWAE, PIWAE

The IWAE bound `log (1/K) sum_k w_k` tightens as K grows, and a model trained on it reaches a
better log p(x). But Rainforth et al. (2018) found that its gradient for the *inference network*
gets worse with K: its signal-to-noise ratio `|E[g]| / std[g]` falls like `1 / sqrt(K)`. As the
bound approaches log p(x) it depends less and less on q, so the true gradient shrinks, while the
noise of its estimate does not shrink as fast.

## Where the noise comes from

Tutorial 3 compared the two ways to differentiate an expectation over q. The
*reparameterization* gradient moves the samples `z = mu + sigma eps` and differentiates the
integrand through them; the *score-function* gradient weights the integrand by
`d/dphi log q_phi(z)`, which is noisy. The reparameterized gradient of the IWAE bound secretly
contains a score-function term: `log w_k = log p(x, z_k) - log q_phi(z_k)` depends on phi twice,
through the sample `z_k` (a path term) and directly through q's density at a fixed point (a
score term, `-d/dphi log q_phi(z_k)`). That second term has zero mean, but not zero variance.

- **STL** (Roeder et al., 2017, `train.objective='elbo_stl'`) drops it from the ELBO's gradient:
  log q is evaluated at the sample with q's parameters frozen (`stop_gradient` on the
  parameters, not on z). The estimate stays unbiased, and its variance vanishes as q approaches
  the posterior.
- **DReG** (Tucker et al., 2019, `train.objective='iwae_dreg'`) removes it from the IWAE bound's
  gradient by applying the reparameterization trick a second time to the score term: the
  encoder's gradient becomes `sum_k w~_k^2 d log w_k / dz_k dz_k / dphi` with the normalized
  weights `w~` squared and held fixed. The decoder keeps IWAE's own gradient.
- **MIWAE, CIWAE, PIWAE** (Rainforth et al., 2018) trade tightness for the encoder's signal:
  M groups of K samples, a mix of ELBO and IWAE, or IWAE for the decoder and MIWAE for the encoder.

The surrogate that gives DReG's gradient, with its value kept at the bound:

{common.listing(estimators.dreg_iwae)}

## The signal-to-noise ratio against K

A linear-Gaussian model (x in 20 dimensions, z in 5, `jaxvae.models.linear_gaussian`), q a
factorized Gaussian near the posterior; for each K, {draws} independent draws of the K samples
at the same parameters, and for each parameter the SNR of its gradient, averaged over the
encoder's and over the decoder's parameters:

![gradient SNR against K]({image})

| K | encoder SNR, IWAE | encoder SNR, IWAE-DReG | encoder SNR, ELBO | decoder SNR, IWAE and DReG |
| --- | --- | --- | --- | --- |
{rows}

IWAE's encoder SNR falls from {iwae[0]:.3f} at K = 1 to {iwae[-1]:.3f} at K = {ks[-1]}
({iwae[0] / iwae[-1]:.1f} times lower); DReG's stays above it at every K ({dreg[-1]:.3f} at
K = {ks[-1]}, {max(dreg) / dreg[-1]:.1f} times below its highest). Here q is factorized while the
posterior is not, so even the best q leaves the weights spread and the bound's true gradient
shrinks with K; DReG removes the score term's noise, not that. The decoder's SNR grows with K for
both: IWAE's decoder gradient is fine, which is why DReG and PIWAE keep it. The same measurement
on the trained digits VAE, and model quality at equal steps for every objective, are in
BENCHMARKS.md (`python -m benchmarks.gradient_estimators`).

```python
from jaxvae.train import diagnostics
curves = diagnostics.snr_against_k(model, variables, {{"image": x}},
                                   {{"IWAE": "iwae", "IWAE-DReG": "iwae_dreg"}}, (1, 10, 100),
                                   jax.random.key(0), num_draws=200)
```
""")
  return {"ks": list(ks), "curves": curves}
