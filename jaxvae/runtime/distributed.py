"""Many processes as one JAX job: `initialize` (called by the CLI) and the local launcher.

    initialize()                                  # one process: nothing; Cloud TPU VM: automatic
    initialize("10.0.0.1:1234", 2, 0)             # elsewhere: coordinator address, count, rank
    launch_local(["train", "--workdir=/tmp/run"], num_processes=2, devices_per_process=2)

`launch_local` starts N `jaxvae` processes on this machine, each with its own forced CPU devices,
joined over localhost by `jax.distributed` with CPU collectives (gloo): the way tests exercise
multi-host code, and the engine of `launch/local.py`.
"""

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time

from jaxvae.errors import UserError

# Environment variables that Cloud TPU hosts may set (GKE sets them, a TPU VM's shell need not);
# with none of the flags given, their presence or the TPU chips themselves mean "initialize from
# the TPU metadata" (jax.distributed.initialize() with no arguments).
_CLOUD_TPU_ENV = ("TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID", "TPU_ACCELERATOR_TYPE",
                  "CLOUD_TPU_TASK_ID")


def on_cloud_tpu(environ=None) -> bool:
  """Whether this host is a Cloud TPU VM: a TPU environment variable is set, or TPU chips are on
  its PCI bus (found the way JAX itself finds them, by Google's PCI vendor and TPU device ids)."""
  environ = os.environ if environ is None else environ
  if any(environ.get(name) for name in _CLOUD_TPU_ENV):
    return True
  from jax._src import hardware_utils  # Private, but JAX's own test; it starts no backend.

  return hardware_utils.num_available_tpu_chips_and_device_id()[0] > 0


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, heartbeat_timeout_s: int = 100) -> bool:
  """Joins this process to a multi-process JAX job; returns whether it did.

  All three arguments given: `jax.distributed.initialize` with them (GPU clusters, localhost).
  None given: on a Cloud TPU VM, `jax.distributed.initialize()` (it reads the TPU metadata);
  otherwise nothing (a plain single process). Must run before JAX touches any device.
  `heartbeat_timeout_s`: a process silent this long counts as dead and the job stops (JAX's
  coordination service then ends every process), so no process waits for a dead peer for ever.
  """
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if any(given) and not all(given):
    raise UserError("--coordinator_address, --num_processes and --process_id go together: give "
                    "all three (or none on a Cloud TPU VM or a single machine)")
  import jax

  if all(given):
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise UserError(f"--process_id={process_id} must be in [0, --num_processes="
                      f"{num_processes})")
    if ":" not in coordinator_address:
      raise UserError(f"--coordinator_address={coordinator_address!r} must be HOST:PORT")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=120,
                               heartbeat_timeout_seconds=heartbeat_timeout_s)
    return True
  if on_cloud_tpu():
    jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat_timeout_s)
    return True
  return False


@contextlib.contextmanager
def stop_when_a_peer_fails():
  """In a job of several processes, a JAX runtime error (typically a collective whose peer died:
  "Connection closed by peer") ends this process at once with one line `jaxvae: error: ...` and
  exit code 1. Left alone, the process would print a traceback, then wait in JAX's shutdown
  barrier for the dead peer until the heartbeat timeout, and abort."""
  import jax

  try:
    yield
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    print(f"jaxvae: error: process {jax.process_index()} of {jax.process_count()} stopped: "
          f"{str(e).splitlines()[0][:300]}; if another process of the job died (see its log), "
          f"restart the whole job: it resumes from the last checkpoint", file=sys.stderr,
          flush=True)
    os._exit(1)  # Not sys.exit: the shutdown barrier would wait for the dead peer.


def agree(value: int) -> int:
  """Process 0's `value` on every process, so that decisions taken from files (a ledger, a
  checkpoint listing) are the same everywhere and every process joins the same computations."""
  import jax

  if jax.process_count() == 1:
    return value
  import numpy as np
  from jax.experimental import multihost_utils

  return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def free_port() -> int:
  """A TCP port on localhost that nothing listens on now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class LocalProcess:
  """One process of a local job: its command line and the environment variables it adds."""

  argv: tuple[str, ...]
  env: tuple[tuple[str, str], ...]

  def shell(self) -> str:
    import shlex

    return " ".join([f"{k}={shlex.quote(v)}" for k, v in self.env] +
                    [shlex.quote(a) for a in self.argv])


def local_processes(args: list[str], num_processes: int, devices_per_process: int,
                    port: int | None = None, module: str = "jaxvae.cli") -> list[LocalProcess]:
  """The commands of an N-process job on localhost: `python -m MODULE ARGS` plus the
  coordinator flags, each process with `devices_per_process` forced CPU devices and this checkout
  first on PYTHONPATH. `module` is the CLI by default; tests run their own workers that take the
  same coordinator flags."""
  if num_processes < 1 or devices_per_process < 1:
    raise UserError("--num_processes and --devices_per_process must be >= 1")
  port = port or free_port()
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = (("JAX_PLATFORMS", "cpu"),
         ("XLA_FLAGS", f"--xla_force_host_platform_device_count={devices_per_process}"),
         ("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))))
  return [LocalProcess(argv=(sys.executable, "-m", module, *args,
                             f"--coordinator_address=localhost:{port}",
                             f"--num_processes={num_processes}", f"--process_id={rank}"),
                       env=env)
          for rank in range(num_processes)]


class LocalJobError(RuntimeError):
  """A process of a local job failed or the job ran past its time limit; the message holds the
  tail of every process's output."""


def launch_local(args: list[str], num_processes: int, devices_per_process: int,
                 timeout_s: float = 300, env: dict | None = None, cwd: str | None = None,
                 echo: bool = False, module: str = "jaxvae.cli") -> list[str]:
  """Runs an N-process `jaxvae` job on localhost to the end; returns each process's output.

  With `echo`, each line is printed as the process writes it, prefixed by its index (`[0] ...`).
  If any process fails, the others are killed at once (a lone survivor would wait for its peers
  forever); on failure or timeout raises `LocalJobError` with every process's last lines.
  """
  processes = local_processes(args, num_processes, devices_per_process, module=module)
  base = dict(os.environ if env is None else env)
  running, lines, readers, printing = [], [], [], threading.Lock()

  def read(rank: int, stream) -> None:
    for line in stream:
      lines[rank].append(line)
      if echo:
        with printing:
          print(f"[{rank}] {line}", end="" if line.endswith("\n") else "\n", flush=True)

  for rank, process in enumerate(processes):
    running.append(subprocess.Popen(list(process.argv), env={**base, **dict(process.env)},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    cwd=cwd))
    lines.append([])
    readers.append(threading.Thread(target=read, args=(rank, running[-1].stdout), daemon=True))
    readers[-1].start()
  deadline, failure = time.monotonic() + timeout_s, None
  while any(p.poll() is None for p in running):
    failed = [rank for rank, p in enumerate(running) if p.returncode not in (None, 0)]
    if failed:
      failure = f"process {failed[0]} exited with code {running[failed[0]].returncode}"
      break
    if time.monotonic() > deadline:
      failure = f"the job ran past {timeout_s:.0f} s"
      break
    time.sleep(0.1)
  for p in running:
    if p.poll() is None:
      p.kill()
    p.wait()
  for reader in readers:
    reader.join()
  outputs = ["".join(output) for output in lines]
  if failure is None and any(p.returncode for p in running):
    failure = "a process failed: " + ", ".join(f"{r}: code {p.returncode}"
                                               for r, p in enumerate(running))
  if failure:
    tails = "\n".join(f"--- process {rank} (exit {p.returncode}) ---\n" +
                      "\n".join(out.splitlines()[-30:])
                      for rank, (p, out) in enumerate(zip(running, outputs)))
    raise LocalJobError(f"local {num_processes}-process job failed: {failure}\n{tails}")
  return outputs
