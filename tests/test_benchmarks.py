"""The benchmark harness runs end to end at tiny sizes, so that it cannot silently rot."""

import json
import os
import subprocess
import sys

from benchmarks import run

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ENV = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}


def test_quick_run_writes_every_section(tmp_path):
  subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
                 check=True, env=_ENV, cwd=_ROOT, timeout=1500)
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
  # The VDVAE section: parameters of the published configs, compiled memory with remat and with
  # FSDP over 8 forced devices, the step-time ratio, the digits comparison.
  vdvae = results["vdvae"]
  cifar10 = vdvae["parameters"]["cifar10_vdvae"]
  assert abs(cifar10["parameters"] / cifar10["published"] - 1) < 0.02
  assert [(m["devices"], m["fsdp_devices"], m["remat"]) for m in vdvae["memory"]] == [
      (1, 1, True), (8, 8, False)]
  assert all(m["total"] > m["temporaries"] > 0 for m in vdvae["memory"])
  residuals = vdvae["backward_residuals"]
  assert residuals["batch 32, remat on"] < residuals["batch 32, remat off"]
  assert vdvae["step_time"]["speed_vs_minimal"] > 0
  assert [len(f["runs"]) for f in vdvae["digits"]["families"]] == [1, 1, 1]


def test_device_check_runs_at_tiny_sizes_on_the_cpu(tmp_path):
  """benchmarks/device_check.sh --tiny: every phase runs, the JSON and the table come out."""
  path = tmp_path / "device_check.json"
  done = subprocess.run(["bash", os.path.join(_ROOT, "benchmarks", "device_check.sh"), "--tiny",
                         "--json", str(path)], env={**_ENV, "PYTHON": sys.executable},
                        capture_output=True, text=True, check=True, timeout=600)
  results = json.loads(path.read_text())
  assert results["tiny"] and results["matmul"]["float32"] > 0
  for dtype in ("bfloat16", "float32"):
    train = results[f"train_{dtype}"]
    assert train["images_per_sec"] > 0 and train["flops_per_step"] > 0, train
  assert results["eval"]["log_weights_per_sec"] > 0
  assert "model FLOP utilization" in done.stdout and "not run" not in done.stdout
