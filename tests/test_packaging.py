"""pyproject.toml: the fast-moving dependencies are capped, and what is installed (what the tests
ran with) lies inside the caps; the PyTorch baseline is not pinned to one (multi-GB) build."""

import importlib.metadata
import os
import tomllib

from packaging.requirements import Requirement

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CAPPED = ("jax", "flax", "orbax-checkpoint")


def _project() -> dict:
  with open(os.path.join(_ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)["project"]


def test_fast_moving_dependencies_have_upper_bounds_that_the_tested_versions_meet():
  requirements = {r.name: r for r in map(Requirement, _project()["dependencies"])}
  for name in _CAPPED:
    specifier = requirements[name].specifier
    assert any(s.operator == "<" for s in specifier), f"{name} has no upper bound: {specifier}"
    installed = importlib.metadata.version(name)
    assert specifier.contains(installed), f"{name} {installed} is outside {specifier}"


def test_the_pytorch_baseline_is_not_pinned_to_one_build():
  (torch,) = map(Requirement, _project()["optional-dependencies"]["benchmark"])
  assert not any(s.operator in ("==", "===") for s in torch.specifier), torch
