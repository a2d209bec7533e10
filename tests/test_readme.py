"""The README's commands and code stay true."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language):
  return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
  ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
  assert _blocks("bash")[1].strip() == ci_command


def test_first_command_trains_on_the_embedded_default():
  first = _blocks("bash")[0].strip()
  assert first.startswith("python3 -m venv .venv && .venv/bin/pip install -e . && ")
  assert first.endswith(".venv/bin/jaxvae train --workdir=runs/digits_vae")


def test_library_example_runs():
  namespace = {}
  exec(_blocks("python")[0], namespace)  # noqa: S102
  assert namespace["log_w"].shape == (10, 4)
  assert namespace["elbo"].shape == namespace["iwae"].shape == (4,)
  assert float(namespace["kl"]) == 0.0
  assert bool((namespace["iwae"] >= namespace["elbo"] - 1e-5).all())
