"""`jaxvae plot`: the curves drawn are the records in the workdir, also of a run in progress."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxvae.cli import main
from jaxvae.plot import plot_runs


def _write_run(workdir, num_logs: int, partial: bool = False, seed: int = 0):
  """A workdir as the trainer and evaluator leave it, with random values; returns the records."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
  train = [{"step": 10 * (i + 1), "loss": float(rng.normal()), "elbo": float(rng.normal()),
            "log_likelihood": float(rng.normal()), "kl": float(rng.random()),
            "kl_layer_0": float(rng.random()), "kl_layer_1": float(rng.random()),
            "learning_rate": 1e-3, "grad_norm": float(rng.random()), "skipped_updates": i // 2}
           for i in range(num_logs)]
  evals = [{"step": step, "split": "test", "num_samples": k, "log_px": float(rng.normal()),
            "bits_per_dim": float(rng.random())} for step in (10, 20) for k in (1000, 10)]
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in train)
    if partial:
      f.write('{"step": 999, "loss": 1.')  # The trainer is writing this line right now.
  with open(os.path.join(workdir, "eval", "log_likelihood.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in evals)
  return train, evals


def test_curves_are_the_records_of_a_run_in_progress(tmp_path):
  workdir = str(tmp_path / "run")
  train, evals = _write_run(workdir, num_logs=5, partial=True)
  out = str(tmp_path / "curves.png")
  panels = plot_runs([workdir], out)[workdir]
  assert Image.open(out).size[0] > 1000
  kl = panels["KL(q(z|x) || p(z)), total and per layer"]
  assert list(kl) == ["kl", "kl_layer_0", "kl_layer_1"]
  for key in ("kl", "kl_layer_1"):
    np.testing.assert_array_equal(kl[key][0], [r["step"] for r in train])  # not step 999
    np.testing.assert_array_equal(kl[key][1], [r[key] for r in train])
  log_px = panels["log p(x) for each split and K (eval)"]
  assert list(log_px) == ["test K=10", "test K=1000"]
  np.testing.assert_array_equal(log_px["test K=1000"][1],
                                [r["log_px"] for r in evals if r["num_samples"] == 1000])
  np.testing.assert_array_equal(panels["skipped updates (cumulative)"]["skipped_updates"][1],
                                [0, 0, 1, 1, 2])


def test_several_workdirs_on_one_figure_from_the_cli(tmp_path, capsys):
  runs = [str(tmp_path / name) for name in ("a", "b")]
  _write_run(runs[0], 3)
  _write_run(runs[1], 4, seed=1)
  main(["jaxvae", "plot", f"--workdir={runs[0]}", f"--workdir={runs[1]}"])
  assert os.path.exists(os.path.join(runs[0], "curves.png"))
  assert "Wrote the curves" in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "does not exist"),
    (lambda d: os.makedirs(d), "holds no metrics yet"),
    (lambda d: (os.makedirs(d), open(os.path.join(d, "metrics.jsonl"), "w").write('{"st')),
     "holds no metrics yet"),
])
def test_a_workdir_without_metrics_is_a_clear_error(tmp_path, capsys, make, message):
  workdir = str(tmp_path / "empty")
  make(workdir)
  with pytest.raises(SystemExit) as exit_info:
    main(["jaxvae", "plot", f"--workdir={workdir}", f"--out={tmp_path / 'x.png'}"])
  assert exit_info.value.code == 2 and message in capsys.readouterr().err
  assert not (tmp_path / "x.png").exists()


def test_panels_without_records_are_left_out(tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({"step": 5, "loss": 1.0}) + "\n")
  panels = plot_runs([workdir], str(tmp_path / "c.png"))[workdir]
  assert [title for title, series in panels.items() if series] == ["training loss"]
  assert Image.open(tmp_path / "c.png").size[0] < 500  # one panel wide


def test_every_metric_the_model_writes_is_drawn(tmp_path):
  """The VQ-VAE's quantizer metrics and penalty, and any user model's own metric, each get a panel;
  the trainer's bookkeeping gets none."""
  workdir = str(tmp_path / "vq")
  os.makedirs(workdir)
  records = [{"step": s, "loss": 1.0, "quantizer_perplexity": 3.0 + s, "penalty": 0.5,
              "my_metric": -s, "examples_per_sec": 10.0, "save_seconds": 0.1} for s in (5, 10)]
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)
  panels = plot_runs([workdir], str(tmp_path / "c.png"))[workdir]
  np.testing.assert_array_equal(
      panels["quantizer_perplexity (model)"]["quantizer_perplexity"][1], [8.0, 13.0])
  assert {"penalty (model)", "my_metric (model)"} <= set(panels)
  assert not any("examples_per_sec" in title or "save_seconds" in title for title in panels)


def _drawn_series(figure_axes, title):
  """(colour, marker, line style) of each line drawn in the panel titled `title`."""
  ax = next(ax for ax in figure_axes if ax.get_title() == title)
  return [(line.get_color(), line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]


def test_each_eval_series_has_its_own_colour_and_marker(tmp_path, monkeypatch):
  from matplotlib.figure import Figure

  workdir = str(tmp_path / "run")
  _write_run(workdir, 3)
  ks = (1, 5, 10, 50, 100, 500, 1000, 5000)
  with open(os.path.join(workdir, "eval", "log_likelihood.jsonl"), "w") as f:
    f.writelines(json.dumps({"step": step, "split": split, "num_samples": k, "log_px": -float(k),
                             "bits_per_dim": 0.1}) + "\n"
                 for step in (10, 20) for split in ("test", "valid") for k in ks)
  figures = []
  monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figures.append(self))
  plot_runs([workdir], str(tmp_path / "c.png"))
  drawn = _drawn_series(figures[0].axes, "log p(x) for each split and K (eval)")
  assert len(drawn) == 2 * len(ks)
  assert len({colour for colour, _, _ in drawn[:10]}) == 10  # 10 colours, then they cycle...
  assert len(set(drawn)) == len(drawn)  # ...but no two series look the same.
  assert len({(marker, style) for _, marker, style in drawn}) == len(drawn)


def test_one_checkpoint_at_several_k_is_a_curve_against_k(tmp_path, monkeypatch):
  from matplotlib.figure import Figure

  workdir = str(tmp_path / "run")
  _write_run(workdir, 3)
  ks = (1, 10, 100, 1000)
  with open(os.path.join(workdir, "eval", "log_likelihood.jsonl"), "w") as f:
    f.writelines(json.dumps({"step": 30, "split": "test", "num_samples": k,
                             "log_px": -20.0 + 1 / k, "bits_per_dim": 0.5}) + "\n" for k in ks)
  figures = []
  monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figures.append(self))
  panels = plot_runs([workdir], str(tmp_path / "c.png"))[workdir]
  assert panels["log p(x) for each split and K (eval)"] == {}  # No column of dots at step 30.
  ks_drawn, log_px = panels["log p(x) against K (eval of one checkpoint)"]["test (step 30)"]
  np.testing.assert_array_equal(ks_drawn, ks)
  np.testing.assert_array_equal(log_px, [-20.0 + 1 / k for k in ks])
  ax = next(ax for ax in figures[0].axes
            if ax.get_title() == "log p(x) against K (eval of one checkpoint)")
  assert ax.get_xscale() == "log" and ax.get_xlabel() == "K (importance samples)"
  np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), ks)
