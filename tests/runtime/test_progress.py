"""The progress bar (a terminal) and plain lines (anything else)."""

import io

from jaxvae.runtime.progress import Progress, format_eta
from jaxvae.train.loop import log_line


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


_SUMMARY = {"loss": 1.0, "elbo": -1.0, "kl": 0.5, "learning_rate": 1e-3, "skipped_updates": 2,
            "examples_per_sec": 100.0}


def test_eta_format():
  assert format_eta(0) == "0:00:00"
  assert format_eta(3725.4) == "1:02:05"  # 1 h, 2 min, 5 s


def test_bar_on_a_terminal_and_plain_lines_elsewhere():
  terminal, pipe = _Terminal(), io.StringIO()
  for stream in (terminal, pipe):
    progress = Progress(0, 10, stream=stream)
    progress.update(10)
    progress.line(log_line(10, 10, _SUMMARY, progress.eta(10)))
    progress.close()
  assert terminal.getvalue().startswith("\r[" + "#" * 30 + "] 10/10 ")
  assert "ETA 0:00:00" in terminal.getvalue()
  assert pipe.getvalue() == ("step 10/10: loss 1.000, elbo -1.000, kl 0.500, lr 1.00e-03, "
                             "skipped 2, 100 examples/s\n")
  disabled = _Terminal()
  progress = Progress(0, 10, enabled=False, stream=disabled)
  progress.update(10)
  assert disabled.getvalue() == ""


def test_plain_lines_every_few_seconds_off_a_terminal(monkeypatch):
  clock = iter(range(0, 1000, 7))  # each reading 7 s after the one before
  monkeypatch.setattr("time.perf_counter", lambda: next(clock))
  pipe = io.StringIO()
  progress = Progress(0, 100, stream=pipe, unit="examples", label="eval: ", every=10.0)
  for done in (10, 20, 30, 40, 100):
    progress.update(done)
  lines = pipe.getvalue().splitlines()
  assert lines and all(line.startswith("eval: ") and "examples" in line for line in lines)
  assert len(lines) < 5  # not every update: at most one line per 10 s
  assert "ETA" in lines[0]
