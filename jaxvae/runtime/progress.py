"""Progress reporting: a one-line bar with rate and ETA on a terminal, plain log lines otherwise."""

import sys
import time

import jax


def format_eta(seconds: float) -> str:
  """`H:MM:SS` of a non-negative duration (rounded to whole seconds)."""
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
  """`update(step)` redraws the bar (a terminal only, at most 5 times a second); `log(step, summary)`
  prints one line of metrics (always). Only process 0 writes."""

  def __init__(self, start_step: int, num_steps: int, enabled: bool = True, stream=None,
               width: int = 30):
    self._stream = stream or sys.stdout
    self._active = jax.process_index() == 0
    self._bar = enabled and self._active and self._stream.isatty()
    self._start, self._total, self._width = start_step, num_steps, width
    self._started = time.perf_counter()
    self._drawn, self._last_draw = False, 0.0

  def update(self, step: int) -> None:
    now = time.perf_counter()
    if not self._bar or (now - self._last_draw < 0.2 and step < self._total):
      return
    done = step - self._start
    rate = done / max(now - self._started, 1e-9)
    eta = (self._total - step) / rate if rate > 0 else 0.0
    filled = int(self._width * step / max(self._total, 1))
    self._stream.write(f"\r[{'#' * filled}{'.' * (self._width - filled)}] {step}/{self._total} "
                       f"{rate:.1f} steps/s ETA {format_eta(eta)}")
    self._stream.flush()
    self._drawn, self._last_draw = True, now

  def log(self, step: int, summary: dict) -> None:
    if not self._active:
      return
    if self._drawn:
      self._stream.write("\n")
      self._drawn = False
    done = step - self._start
    rate = done / max(time.perf_counter() - self._started, 1e-9)
    eta = f", ETA {format_eta((self._total - step) / rate)}" if rate > 0 and step < self._total \
        else ""
    self._stream.write(f"step {step}/{self._total}: loss {summary['loss']:.3f}, "
                       f"elbo {summary['elbo']:.3f}, kl {summary['kl']:.3f}, "
                       f"lr {summary['learning_rate']:.2e}, skipped {summary['skipped_updates']}, "
                       f"{summary['examples_per_sec']:.0f} examples/s{eta}\n")
    self._stream.flush()

  def close(self) -> None:
    if self._drawn:
      self._stream.write("\n")
      self._stream.flush()
      self._drawn = False
