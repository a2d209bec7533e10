"""Every launcher dry run the README shows prints exactly what the README says it prints."""

import os
import re
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # launch/ is a directory of scripts next to the package.

from launch import slurm, tpu  # noqa: E402

LAUNCHERS = {"launch/tpu.py": tpu, "launch/slurm.py": slurm}


def _shown_dry_runs():
  """(argv, shown output) of each README console block that starts with a launcher's command."""
  with open(os.path.join(ROOT, "README.md")) as f:
    blocks = re.findall(r"```console\n\$ (.*?)```", f.read(), flags=re.S)
  for block in blocks:
    command, _, output = block.replace("\\\n", "").partition("\n")
    yield shlex.split(command), output


def test_readme_shows_the_dry_runs_of_both_launchers(capsys, monkeypatch):
  monkeypatch.chdir(ROOT)  # The README's commands run from the checkout.
  for name in ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_COMPUTE_ZONE"):
    monkeypatch.delenv(name, raising=False)
  shown = list(_shown_dry_runs())
  assert {argv[1] for argv, _ in shown} == set(LAUNCHERS)
  for argv, output in shown:
    assert argv[0] == ".venv/bin/python" and "--dry-run" in argv
    assert LAUNCHERS[argv[1]].main(argv[2:]) == 0
    assert capsys.readouterr().out == output, shlex.join(argv)
