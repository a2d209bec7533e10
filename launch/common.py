"""What the launchers share: commands that a dry run prints and a real run executes, and mistakes
that end a launcher with one line.

    runner = Runner(dry_run=True)
    runner.run(["gcloud", "compute", "tpus", "tpu-vm", "list"])   # prints the command only
    sys.exit(main("launch/tpu.py", lambda: run(argv)))             # LaunchError -> one line, 2
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LaunchError(Exception):
  """A mistake the user can fix (a flag, a missing tool); the message names it and the fix."""


class CommandFailed(Exception):
  """A command that a real run executed exited with an error (its own output says why)."""


def require_program(program: str, hint: str) -> str:
  """The path of `program` on PATH, or a `LaunchError` that says how to get it."""
  path = shutil.which(program)
  if path is None:
    raise LaunchError(f"{program} not found on PATH; {hint}")
  return path


def require_file(path: str, flag: str) -> str:
  if not os.path.isfile(path):
    raise LaunchError(f"{flag}={path} not found; give the path of an existing file")
  return path


def relative_to_root(path: str) -> str | None:
  """`path` relative to the project root if it lies inside it, else None."""
  relative = os.path.relpath(os.path.abspath(path), ROOT)
  return None if relative.startswith("..") else relative


def shell_join(argv: Sequence[str]) -> str:
  """`argv` as one shell line; a `--flag=value` argument quotes only its value."""
  def quote(arg: str) -> str:
    flag = re.fullmatch(r"(--[\w.-]+=)(.*)", arg, flags=re.S)
    return flag[1] + shlex.quote(flag[2]) if flag else shlex.quote(arg)

  return " ".join(map(quote, argv))


class Runner:
  """Runs commands, or with `dry_run` prints them (one shell line each) and runs nothing.

  A real run prints each command with a leading `+ ` before it runs (like `set -x`).
  """

  def __init__(self, dry_run: bool):
    self.dry_run = dry_run

  def note(self, text: str) -> None:
    """A comment line: in a dry run it says when the next commands run (`# if ...`)."""
    print(f"# {text}", flush=True)

  def run(self, argv: Sequence[str]) -> None:
    """Runs `argv` to the end (a `CommandFailed` if it fails); a dry run only prints it."""
    print(("" if self.dry_run else "+ ") + shell_join(argv), flush=True)
    if self.dry_run:
      return
    if subprocess.run(list(argv), check=False).returncode:
      raise CommandFailed(f"`{shell_join(argv)}` failed; see its output above")

  def query(self, argv: Sequence[str], absent: Sequence[str] = ()) -> str | None:
    """The standard output of a read-only `argv`. If it fails: None when its error output holds
    one of `absent` (e.g. gcloud's "NOT_FOUND": the thing asked about does not exist), else a
    `CommandFailed` with its `ERROR` line, or its last (an expired login, no network, no
    permission: never read as "does not exist"). Never called in a dry run."""
    assert not self.dry_run, "a dry run asks nothing"
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if result.returncode == 0:
      return result.stdout.strip()
    if any(text in result.stderr for text in absent):
      return None
    lines = [line for line in result.stderr.splitlines() if line.strip()] or [
        f"exit code {result.returncode}"]
    error = next((line for line in lines if line.startswith("ERROR")), lines[-1])
    raise CommandFailed(f"`{shell_join(argv)}` failed: {error.strip()}")


def split_at_dashes(argv: list[str]) -> tuple[list[str], list[str]]:
  """The launcher's own arguments and those after the first `--` (passed on to `jaxvae`)."""
  cut = argv.index("--") if "--" in argv else len(argv)
  return argv[:cut], argv[cut + 1:]


def main(program: str, body: Callable[[], None]) -> int:
  """Runs `body`; a `LaunchError` prints `PROGRAM: error: MESSAGE` and gives 2, a failed
  command gives 1, success 0. Never a traceback for a mistake."""
  try:
    body()
  except LaunchError as e:
    print(f"{program}: error: {e}", file=sys.stderr)
    return 2
  except CommandFailed as e:
    print(f"{program}: {e}", file=sys.stderr)
    return 1
  return 0
