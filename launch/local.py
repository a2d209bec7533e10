"""Runs one `jaxvae` job as N processes on this machine, joined over localhost (CPU collectives).

    python launch/local.py --num_processes=2 --devices_per_process=2 -- \
        train --workdir=/tmp/run --config=configs/digits_vae.py:smoke
    python launch/local.py --dry-run --num_processes=2 -- train --workdir=/tmp/run

Each process gets `devices_per_process` forced CPU devices and the coordinator flags
(`--coordinator_address=localhost:PORT --num_processes=N --process_id=I`); the job is one mesh of
N x devices_per_process devices. Each process's output is printed as it comes, each line prefixed
by the process's index (`[0] step 100: ...`). `--dry-run` prints the commands and runs nothing. If
a process fails, the others are stopped and every process's last lines are printed; the exit code
is 1.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxvae.errors import UserError  # noqa: E402
from jaxvae.runtime import distributed  # noqa: E402
from launch import common  # noqa: E402


def run(argv: list[str]) -> list[str]:
  """Runs (or with --dry-run prints) the job; returns each process's output."""
  parser = argparse.ArgumentParser(prog="launch/local.py", description=__doc__.splitlines()[0])
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=1)
  parser.add_argument("--timeout_s", type=float, default=3600)
  parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true")
  own, args = common.split_at_dashes(argv)
  options = parser.parse_args(own)
  if not args:
    raise common.LaunchError("give the jaxvae command after --, e.g. -- train --workdir=/tmp/run")
  try:
    if options.dry_run:
      for process in distributed.local_processes(args, options.num_processes,
                                                 options.devices_per_process):
        print(process.shell())
      return []
    return distributed.launch_local(args, options.num_processes, options.devices_per_process,
                                    timeout_s=options.timeout_s, echo=True)
  except UserError as e:
    raise common.LaunchError(str(e)) from None
  except distributed.LocalJobError as e:
    raise common.CommandFailed(str(e)) from None


def main(argv: list[str]) -> int:
  return common.main("launch/local.py", lambda: run(argv))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
