"""The benchmark harness runs end to end at tiny sizes, so that it cannot silently rot."""

import json
import os
import subprocess
import sys

from benchmarks import run


def test_quick_run_writes_every_section(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
                 check=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                 timeout=900)
  text = (tmp_path / "BENCHMARKS.md").read_text()
  results = json.loads((tmp_path / "results.json").read_text())
  for name in ["header", *run.BENCHMARKS]:
    assert f"<!-- begin {name} -->" in text and f"<!-- end {name} -->" in text
    assert name in results
  assert "python -m benchmarks.run --quick" in text
  trainer = results["trainer"]["models"]
  for entry in trainer.values():
    for loop in entry["loops"].values():
      assert loop["examples_per_sec"] > 0 and 0 < loop["flops_fraction_of_peak"]
    assert entry["loops"]["minimal JAX loop"]["ratio_to_minimal"] == 1.0
  scaling = results["scaling"]
  assert [k for k in scaling if k.isdigit()] == ["1", "2", "4", "8"]
  assert all(scaling[k]["max_param_deviation"] < 1e-4 for k in ("2", "4", "8"))
