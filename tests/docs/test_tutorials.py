"""Every tutorial runs in its tiny mode and writes its page with its images; the numbers on a page
are checked against the closed forms the tutorial itself compares to; the API reference builds."""

import math
import os
import re

from docs import build


def _page(out_dir, name):
  with open(os.path.join(out_dir, f"{name}.md")) as f:
    text = f.read()
  for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
    assert os.path.getsize(os.path.join(out_dir, image)) > 1000, image
  assert "```python" in text
  return text


def test_latent_variables(tmp_path):
  numbers = build.build_tutorial("latent_variables", str(tmp_path), tiny=True)
  text = _page(tmp_path, "latent_variables")
  # The single Gaussian puts far more mass in the gap than the data have there.
  assert numbers["gaussian_gap_mass"] > 10 * numbers["data_gap_fraction"]
  assert f"{numbers['gaussian_gap_mass']:.3f}" in text
  assert numbers["toy_test_elbo"] <= numbers["toy_test_log_px"] + 1e-5


def test_elbo_iwae(tmp_path):
  n = build.build_tutorial("elbo_iwae", str(tmp_path), tiny=True)
  text = _page(tmp_path, "elbo_iwae")
  # The Monte Carlo ELBO agrees with log p(x) - KL(q || p(z|x)) in closed form, and K = 1 is it.
  assert abs(n["elbo_mc"] - n["elbo_exact"]) < 4 * n["elbo_mc_stderr"]
  assert abs(n["gaps"][1] - n["kl_to_posterior"]) < 4 * n["stderr"][1]
  ks = sorted(n["gaps"])
  assert all(n["gaps"][a] > n["gaps"][b] for a, b in zip(ks, ks[1:]))
  assert f"{n['kl_to_posterior']:.4f}" in text


def test_gradient_variance(tmp_path):
  n = build.build_tutorial("gradient_variance", str(tmp_path), tiny=True)
  _page(tmp_path, "gradient_variance")
  for results in n["results"].values():
    assert all(r["rms_z"] < 3 for r in results.values())  # unbiased, checked against the exact
    assert results["score function"]["variance"] > results["reparameterization"]["variance"]


def test_posteriors(tmp_path, tfds_dir, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  n = build.build_tutorial("posteriors", str(tmp_path), tiny=True)
  text = _page(tmp_path, "posteriors")
  for family in n["families"].values():
    assert family["elbo"] <= family["log_px"]
    assert math.isclose(family["amortization_gap"],
                        family["refined_elbo"] - family["elbo"], abs_tol=1e-4)
    assert f"{family['log_px']:.2f}" in text


def test_vqvae(tmp_path, tfds_dir, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  n = build.build_tutorial("vqvae", str(tmp_path), tiny=True)
  text = _page(tmp_path, "vqvae")
  assert 0 < n["codes_used"] <= n["num_codes"] and 1 <= n["perplexity"] <= n["codes_used"]
  assert math.isclose(n["uniform_log_prior"], -16 * math.log(64))
  assert f"{n['learned_bound']:.2f}" in text


def test_scaling(tmp_path, tfds_dir, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  n = build.build_tutorial("scaling", str(tmp_path), tiny=True)
  _page(tmp_path, "scaling")
  # Preempted on 8 devices, resumed on 1: the same losses as the uninterrupted run on 8.
  assert n["devices"] == 8 and n["preempted"] and n["stopped_at"] < n["num_steps"]
  assert n["steps_compared"] and n["max_loss_difference"] < 1e-4
  assert n["evaluated"][-1] == n["num_steps"]  # the eval job reached the final checkpoint


def test_api_reference_builds(tmp_path):
  index = build.build_api(str(tmp_path))
  assert os.path.exists(index)
  with open(tmp_path / "jaxvae" / "plot.html") as f:
    assert "plot_runs" in f.read()


def test_custom_model(tmp_path):
  """A model outside the package trains from the CLI, resumes bit-exactly after SIGKILL, and
  eval / sample / plot work on its workdir."""
  n = build.build_tutorial("custom_model", str(tmp_path), tiny=True)
  text = _page(tmp_path, "custom_model")
  assert n["bit_exact"] and 0 < n["killed_at"] < n["steps"]
  assert n["user_lines"] <= 65
  assert f"K={n['k']}" in text and "bit-for-bit equal" in text


def test_gradient_estimators(tmp_path):
  """IWAE's encoder SNR falls with K; DReG's stays above it; K = 1 IWAE is the ELBO."""
  n = build.build_tutorial("gradient_estimators", str(tmp_path), tiny=True)
  text = _page(tmp_path, "gradient_estimators")
  iwae, dreg = n["curves"]["IWAE"]["encoder"], n["curves"]["IWAE-DReG"]["encoder"]
  assert iwae[-1] < iwae[0] and all(d > i for d, i in zip(dreg, iwae))
  assert abs(n["curves"]["ELBO (K samples)"]["encoder"][0] - iwae[0]) < 1e-5 * iwae[0]
  assert f"{iwae[-1]:.3f}" in text


def test_deep_hierarchies(tmp_path, tfds_dir, monkeypatch):
  """Hierarchies of 1 and 2 resolution stages: the importance-sampled estimate rises with K above
  the ELBO, every group has its KL, and the page holds the run's numbers and grids."""
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  n = build.build_tutorial("deep_hierarchies", str(tmp_path), tiny=True)
  text = _page(tmp_path, "deep_hierarchies")
  k_small, k_large = n["ks"]
  for result in n["results"].values():
    assert result["log_px"][k_large] > result["log_px"][k_small]
    assert result["log_px"][k_large] > result["elbo"]
    assert len(result["group_kls"]) == len(result["resolutions"]) == result["groups"]
  deepest = n["results"][max(n["results"])]
  assert n["counts"] == (0, 1, 2, 3) == tuple(range(deepest["groups"] + 1))
  assert math.isclose(sum(n["kl_by_resolution"].values()), sum(deepest["group_kls"]),
                      rel_tol=1e-6)
  assert all(f"{gap:.2f} nats" in text for gap in n["gaps"].values())
