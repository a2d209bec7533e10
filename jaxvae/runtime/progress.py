"""Progress reporting: a one-line bar with rate and ETA on a terminal; on anything else (a log
file, a pipe), optionally a plain line every `every` seconds. Only process 0 writes."""

import sys
import time

import jax


def format_eta(seconds: float) -> str:
  """`H:MM:SS` of a non-negative duration (rounded to whole seconds)."""
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
  """Progress from `start` to `total` `unit`s: `update(done)` redraws the bar (a terminal, at most
  5 times a second) or, with `every`, writes a plain line at most every `every` seconds
  elsewhere; `line(text)` writes a line of its own (always); `eta(done)` is the remaining time."""

  def __init__(self, start: int, total: int, enabled: bool = True, stream=None, width: int = 30,
               unit: str = "steps", label: str = "", every: float | None = None):
    self._stream = stream or sys.stdout
    self._active = jax.process_index() == 0
    self._bar = enabled and self._active and self._stream.isatty()
    self._every = every if enabled and self._active and not self._bar else None
    self._start, self._total, self._width = start, total, width
    self._unit, self._label = unit, label
    self._started = time.perf_counter()
    self._drawn = False
    self._last_draw = self._started if self._every is not None else 0.0

  def _rate(self, done: int, now: float) -> float:
    return (done - self._start) / max(now - self._started, 1e-9)

  def eta(self, done: int) -> str:
    """`H:MM:SS` left at the rate so far ('' before any progress or at the end)."""
    rate = self._rate(done, time.perf_counter())
    return format_eta((self._total - done) / rate) if rate > 0 and done < self._total else ""

  def update(self, done: int) -> None:
    now = time.perf_counter()
    if self._bar and (now - self._last_draw >= 0.2 or done >= self._total):
      filled = int(self._width * done / max(self._total, 1))
      self._stream.write(f"\r{self._label}[{'#' * filled}{'.' * (self._width - filled)}] "
                         f"{done}/{self._total} {self._rate(done, now):.1f} {self._unit}/s "
                         f"ETA {format_eta((self._total - done) / max(self._rate(done, now), 1e-9))}")
      self._stream.flush()
      self._drawn, self._last_draw = True, now
    elif self._every is not None and now - self._last_draw >= self._every and done < self._total:
      eta = self.eta(done)
      self.line(f"{self._label}{done}/{self._total} {self._unit}" + (f", ETA {eta}" if eta else ""))
      self._last_draw = now

  def line(self, text: str) -> None:
    if not self._active:
      return
    if self._drawn:
      self._stream.write("\n")
      self._drawn = False
    self._stream.write(text + "\n")
    self._stream.flush()

  def close(self) -> None:
    if self._drawn:
      self._stream.write("\n")
      self._stream.flush()
      self._drawn = False
