"""launch/local.py (`distributed.launch_local(..., echo=True)`): each process's output is streamed
as it is written, prefixed by its index."""

import io
import sys
import time

from jaxvae.runtime import distributed

_WORKER = """import sys, time
rank = int(sys.argv[-1].split("=")[1])  # --process_id=I, after the coordinator flags
print(f"started {rank}", flush=True)
time.sleep(3)
print(f"done {rank}", flush=True)
"""


class _TimedOutput(io.StringIO):
  """stdout that notes when each line was written."""

  def __init__(self):
    super().__init__()
    self.times = {}

  def write(self, text):
    for line in text.splitlines():
      self.times.setdefault(line, time.monotonic())
    return super().write(text)


def test_each_process_is_streamed_prefixed_by_its_index(tmp_path, monkeypatch):
  (tmp_path / "streaming_worker.py").write_text(_WORKER)
  monkeypatch.setenv("PYTHONPATH", str(tmp_path))
  output = _TimedOutput()
  monkeypatch.setattr(sys, "stdout", output)
  outputs = distributed.launch_local([], 2, 1, timeout_s=60, echo=True,
                                     module="streaming_worker")
  ended = time.monotonic()
  assert outputs == ["started 0\ndone 0\n", "started 1\ndone 1\n"]
  assert set(output.times) == {"[0] started 0", "[0] done 0", "[1] started 1", "[1] done 1"}
  assert ended - output.times["[1] started 1"] > 2  # Printed while the process still ran.
