"""Cloud TPU VMs and pod slices: create one, install jaxvae on every worker, train, evaluate,
show logs, delete.

    python launch/tpu.py up --name=vae --tpu_type=v5e-16 --zone=us-west4-a --project=my-project \
        --workdir=gs://my-bucket/runs/vae --config=configs/digits_vae.py [-- --config.KEY=VALUE ...]
    python launch/tpu.py eval   --name=vae --tpu_type=v5e-16 ... --workdir=gs://my-bucket/runs/vae
    python launch/tpu.py logs   --name=vae ... [--job=eval] [--worker=0] [--follow]
    python launch/tpu.py delete --name=vae ...

Subcommands: `create` (a TPU VM or pod slice: on demand, `--spot`, and/or `--queued` through
queued resources), `install` (jaxvae from this checkout on every worker), `train` (`jaxvae train`
on all workers at once, in the background, logging to ~/jaxvae_train.log), `eval` (`jaxvae eval
--follow` on a separate one-host VM NAME-eval, or with `--eval_worker=I` on worker I of the slice on
its CPU), `logs`, `delete` (the slice, and NAME-eval if it exists), and `up` = create + install +
train. Each is safe to repeat: after a preemption, `up` recreates the slice and `jaxvae train`
resumes from the workdir's latest checkpoint. Flags after `--` go to `jaxvae train` / `jaxvae eval`.

`--dry-run` prints the exact commands and runs nothing, not even gcloud queries: give --project and
--zone as flags (or CLOUDSDK_CORE_PROJECT / CLOUDSDK_COMPUTE_ZONE); a real run also reads
`gcloud config get-value project` / `compute/zone`. Lines starting with `#` say when the next
command runs.
"""

import argparse
import dataclasses
import os
import re
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import common  # noqa: E402
from launch.common import LaunchError  # noqa: E402

# What install copies to ~/jaxvae on every worker: enough to `pip install` jaxvae and find configs.
SHIPPED = ("pyproject.toml", "README.md", "jaxvae", "configs")
REMOTE_DIR = "jaxvae"
_SIZES_PER_CHIP = (1, 4, 8, 16, 32, 64, 128, 256)  # v5e and v6e slices, in chips.
_RUNTIME = {"v5litepod": "v2-alpha-tpuv5-lite", "v5p": "v2-alpha-tpuv5", "v6e": "v2-alpha-tpuv6e"}
# What gcloud says of a TPU VM or queued resource that does not exist (any other failure is one).
_NOT_FOUND = ("NOT_FOUND", "was not found")
_GONE_STATES = ("PREEMPTED", "TERMINATED", "STOPPED", "FAILED", "SUSPENDED")


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  """A Cloud TPU accelerator type: `accelerator_type` as gcloud spells it (v4-8, v5litepod-16),
  `hosts` (TPU VMs, i.e. workers and JAX processes), the runtime `version` to create it with, and
  `smallest`, the one-host type of the same generation (the eval VM's default)."""

  accelerator_type: str
  hosts: int
  version: str
  smallest: str


def tpu_slice(tpu_type: str) -> TpuSlice:
  """Parses a TPU type. v2/v3/v4/v5p sizes count TensorCores (2 per chip, 4 chips = 8 cores per
  VM); v5e (v5litepod) and v6e sizes count chips (1, 4 or 8 on one VM, then 4 per VM)."""
  match = re.fullmatch(r"(v2|v3|v4|v5p|v5litepod|v5e|v6e)-(\d+)", tpu_type.strip().lower())
  if not match:
    raise LaunchError(f"--tpu_type={tpu_type} is not a Cloud TPU type; give GENERATION-SIZE, e.g. "
                      f"v4-8, v5p-8, v5litepod-16 (or v5e-16), v6e-8")
  generation, size = ("v5litepod" if match[1] == "v5e" else match[1]), int(match[2])
  if generation in ("v5litepod", "v6e"):
    if size not in _SIZES_PER_CHIP:
      raise LaunchError(f"--tpu_type={tpu_type}: {generation} slices have "
                        f"{', '.join(map(str, _SIZES_PER_CHIP))} chips; e.g. {generation}-16")
    hosts, smallest = (1 if size <= 8 else size // 4), f"{generation}-1"
  else:
    if size < 8 or size % 8:
      raise LaunchError(f"--tpu_type={tpu_type}: {generation} sizes count TensorCores, a multiple "
                        f"of 8 (8 per VM); e.g. {generation}-8 (one VM) or {generation}-32 (4 VMs)")
    hosts, smallest = size // 8, f"{generation}-8"
  return TpuSlice(f"{generation}-{size}", hosts, _RUNTIME.get(generation, "tpu-ubuntu2204-base"),
                  smallest)


@dataclasses.dataclass(frozen=True)
class Cloud:
  """gcloud commands for one project and zone, with the provisioning mode of the slices."""

  project: str
  zone: str
  spot: bool
  queued: bool

  def gcloud(self, group: str, *args: str) -> list[str]:
    return ["gcloud", "compute", "tpus", group, *args, f"--zone={self.zone}",
            f"--project={self.project}"]

  def describe(self, name: str) -> list[str]:
    if self.queued:
      return self.gcloud("queued-resources", "describe", name, "--format=value(state.state)")
    return self.gcloud("tpu-vm", "describe", name, "--format=value(state)")

  def create(self, name: str, tpu: TpuSlice) -> list[str]:
    spot = ["--spot"] if self.spot else []
    if self.queued:
      return self.gcloud("queued-resources", "create", name, f"--node-id={name}",
                         f"--accelerator-type={tpu.accelerator_type}",
                         f"--runtime-version={tpu.version}", *spot)
    return self.gcloud("tpu-vm", "create", name, f"--accelerator-type={tpu.accelerator_type}",
                       f"--version={tpu.version}", *spot)

  def delete(self, name: str) -> list[str]:
    if self.queued:  # --force also deletes the TPU VM the queued resource holds.
      return self.gcloud("queued-resources", "delete", name, "--force", "--quiet")
    return self.gcloud("tpu-vm", "delete", name, "--quiet")

  def ssh(self, name: str, worker: str, command: str) -> list[str]:
    return self.gcloud("tpu-vm", "ssh", name, f"--worker={worker}", f"--command={command}")

  def scp(self, name: str, sources: list[str], destination: str) -> list[str]:
    return self.gcloud("tpu-vm", "scp", "--recurse", *sources, f"{name}:{destination}",
                       "--worker=all")


def detached(job: str, argv: list[str], env: dict[str, str] | None = None) -> str:
  """A worker's shell command that starts `argv` in ~/jaxvae in the background (it outlives the
  ssh session), appending to ~/jaxvae_JOB.log, unless the JOB started before is still running."""
  pid, log = f"~/jaxvae_{job}.pid", f"~/jaxvae_{job}.log"
  command = " ".join([f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()] +
                     ["nohup", shlex.join(argv)])
  return (f'cd ~/{REMOTE_DIR} && if [ -f {pid} ] && kill -0 "$(cat {pid})" 2>/dev/null; '
          f'then echo "$(hostname): jaxvae {job} is already running"; '
          f"else {command} >> {log} 2>&1 < /dev/null & echo $! > {pid}; fi")


class Launcher:
  """The subcommands, on one Cloud and one Runner."""

  def __init__(self, cloud: Cloud, runner: common.Runner, name: str):
    self.cloud, self.runner, self.name = cloud, runner, name

  def _state(self, name: str) -> str | None:
    """The slice's state (READY, ACTIVE, PREEMPTED, ...), None if it does not exist."""
    return self.runner.query(self.cloud.describe(name), absent=_NOT_FOUND) or None

  def create(self, tpu: TpuSlice, name: str | None = None) -> None:
    name = name or self.name
    what = "queued resource" if self.cloud.queued else "TPU VM"
    if self.runner.dry_run:
      describe = common.shell_join(self.cloud.describe(name))
      self.runner.note(f"if {what} {name} does not exist ({describe} prints nothing); one in "
                       f"state {'/'.join(_GONE_STATES)} is deleted first")
    else:
      state = self._state(name)
      if state and state not in _GONE_STATES:
        self.runner.note(f"{what} {name} exists ({state}): not creating it")
        return self._wait_until_active(name)
      if state:
        self.runner.note(f"{what} {name} is {state}: deleting it to create it again")
        self.runner.run(self.cloud.delete(name))
    self.runner.run(self.cloud.create(name, tpu))
    self._wait_until_active(name)

  def _wait_until_active(self, name: str, poll_seconds: float = 30) -> None:
    """Queued resources: waits until the request is granted (ACTIVE)."""
    if not self.cloud.queued:
      return
    if self.runner.dry_run:
      describe = common.shell_join(self.cloud.describe(name))
      self.runner.note(f"then wait until {describe} prints ACTIVE")
      return
    last = None
    while (state := self._state(name)) != "ACTIVE":
      if state is None or state in _GONE_STATES:
        raise common.CommandFailed(f"queued resource {name} is {state or 'gone'}; run the same "
                                   f"command again to request it anew")
      if state != last:
        self.runner.note(f"queued resource {name}: {state}; waiting for ACTIVE")
        last = state
      time.sleep(poll_seconds)

  def install(self, name: str | None = None) -> None:
    name = name or self.name
    self.runner.run(self.cloud.ssh(name, "all", f"mkdir -p {REMOTE_DIR}"))
    sources = [os.path.relpath(os.path.join(common.ROOT, s)) for s in SHIPPED]
    self.runner.run(self.cloud.scp(name, sources, REMOTE_DIR))
    self.runner.run(self.cloud.ssh(name, "all", "python3 -m pip install --quiet --upgrade "
                                   f'"jax[tpu]" "./{REMOTE_DIR}[gcs]"'))

  def train(self, workdir: str, config: str | None, args: list[str]) -> None:
    flags = []
    if config is not None:
      path, _, variant = config.partition(":")
      remote = common.relative_to_root(path)
      if remote is None or remote.split(os.sep)[0] not in SHIPPED:  # Not copied by install.
        remote = f"configs/{os.path.basename(path)}"
        self.runner.run(self.cloud.scp(self.name, [path], f"{REMOTE_DIR}/{remote}"))
      flags.append(f"--config={remote.replace(os.sep, '/')}" + (f":{variant}" if variant else ""))
    argv = ["python3", "-m", "jaxvae.cli", "train", f"--workdir={workdir}", *flags, *args]
    self.runner.run(self.cloud.ssh(self.name, "all", detached("train", argv)))

  def evaluate(self, tpu: TpuSlice, workdir: str, eval_worker: int | None,
               eval_tpu_type: str | None, args: list[str]) -> None:
    argv = ["python3", "-m", "jaxvae.cli", "eval", f"--workdir={workdir}", "--follow", *args]
    if eval_worker is not None:
      if not 0 <= eval_worker < tpu.hosts:
        raise LaunchError(f"--eval_worker={eval_worker} is not a worker of {tpu.accelerator_type} "
                          f"(workers 0 to {tpu.hosts - 1})")
      # The slice's TPU chips belong to the trainer: the evaluator uses this worker's CPU.
      command = detached("eval", argv, {"JAX_PLATFORMS": "cpu"})
      self.runner.run(self.cloud.ssh(self.name, str(eval_worker), command))
      return
    eval_tpu = tpu_slice(eval_tpu_type or tpu.smallest)
    if eval_tpu.hosts != 1:
      raise LaunchError(f"--eval_tpu_type={eval_tpu.accelerator_type} has {eval_tpu.hosts} VMs; "
                        f"the eval VM is one host: e.g. --eval_tpu_type={tpu.smallest}")
    self.create(eval_tpu, self.eval_name)
    self.install(self.eval_name)
    self.runner.run(self.cloud.ssh(self.eval_name, "0", detached("eval", argv)))

  @property
  def eval_name(self) -> str:
    return f"{self.name}-eval"

  def logs(self, job: str, worker: str | None, eval_worker: int | None, follow: bool) -> None:
    name = self.eval_name if job == "eval" and eval_worker is None else self.name
    if worker is None:
      worker = str(eval_worker) if job == "eval" and eval_worker is not None else "0"
    tail = f"tail -n 100 {'-F ' if follow else ''}~/jaxvae_{job}.log"
    self.runner.run(self.cloud.ssh(name, worker, tail))

  def delete(self) -> None:
    for name in (self.name, self.eval_name):
      if self.runner.dry_run:
        self.runner.note(f"if {name} exists")
      elif self._state(name) is None:
        self.runner.note(f"{name} does not exist: nothing to delete")
        continue
      self.runner.run(self.cloud.delete(name))


def _setting(runner: common.Runner, value: str | None, flag: str, env: str, key: str) -> str:
  """A flag, else gcloud's environment override, else (real runs) `gcloud config get-value`."""
  value = value or os.environ.get(env)
  if not value and not runner.dry_run:
    value = runner.query(["gcloud", "config", "get-value", key])
  if value and value != "(unset)":
    return value
  where = (f"a dry run asks gcloud nothing: pass {flag}=... or set {env}" if runner.dry_run else
           f"pass {flag}=... or run `gcloud config set {key} VALUE`")
  raise LaunchError(f"no Cloud {flag[2:]} set; {where}")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  """The launcher's options and the arguments after `--` (for `jaxvae train` / `jaxvae eval`)."""
  own, passthrough = common.split_at_dashes(argv)
  parser = argparse.ArgumentParser(prog="launch/tpu.py", description=__doc__.splitlines()[0])
  parser.add_argument("command",
                      choices=("up", "create", "install", "train", "eval", "logs", "delete"))
  parser.add_argument("--name", required=True, help="TPU VM / pod slice name (the eval VM is "
                      "NAME-eval)")
  parser.add_argument("--tpu_type", help="accelerator type: v4-8, v5p-16, v5litepod-16 (= v5e-16), "
                      "v6e-8, ... (create, up, train, eval)")
  parser.add_argument("--zone", help="default: CLOUDSDK_COMPUTE_ZONE or gcloud config compute/zone")
  parser.add_argument("--project", help="default: CLOUDSDK_CORE_PROJECT or gcloud config project")
  parser.add_argument("--spot", action="store_true", help="spot (preemptible) capacity")
  parser.add_argument("--queued", action="store_true", help="request the slice as a queued "
                      "resource (waits until granted); give delete the same flag")
  parser.add_argument("--workdir", help="run directory; gs://BUCKET/PATH (required for pod slices "
                      "and a separate eval VM, which must see the trainer's files)")
  parser.add_argument("--config", help="config file (a path in this checkout, or any file: it is "
                      "copied to the workers), optionally :smoke")
  parser.add_argument("--eval_worker", type=int, help="eval: run on this worker of the slice, on "
                      "its CPU, instead of a separate VM NAME-eval")
  parser.add_argument("--eval_tpu_type", help="eval: the type of NAME-eval (default: the smallest "
                      "of the slice's generation, e.g. v5litepod-1)")
  parser.add_argument("--job", choices=("train", "eval"), default="train", help="logs: whose log")
  parser.add_argument("--worker", help="logs: which worker (default 0; 'all' for every worker)")
  parser.add_argument("--follow", action="store_true", help="logs: keep printing new lines")
  parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                      help="print the commands, run nothing")
  return parser.parse_args(own), passthrough


def run(argv: list[str]) -> None:
  options, args = parse(argv)
  command = options.command
  if not re.fullmatch(r"[a-z]([-a-z0-9]{0,40}[a-z0-9])?", options.name):
    raise LaunchError(f"--name={options.name} is not a TPU name: lowercase letters, digits and "
                      f"hyphens, starting with a letter, e.g. --name=vae-run1")
  tpu = None
  if command in ("up", "create", "train", "eval"):
    if not options.tpu_type:
      raise LaunchError(f"{command} needs --tpu_type, e.g. --tpu_type=v4-8")
    tpu = tpu_slice(options.tpu_type)
  if command in ("up", "train", "eval"):
    if not options.workdir:
      raise LaunchError(f"{command} needs --workdir, e.g. --workdir=gs://BUCKET/runs/NAME")
    shared = options.workdir.startswith("gs://")
    if not shared and (tpu.hosts > 1 or (command == "eval" and options.eval_worker is None)):
      who = (f"the {tpu.hosts} workers of {tpu.accelerator_type}" if tpu.hosts > 1 else
             "the trainer and the eval VM")
      raise LaunchError(f"--workdir={options.workdir} is not shared by {who}; give a Cloud "
                        f"Storage path, --workdir=gs://BUCKET/PATH")
  if options.config and command in ("up", "train"):
    common.require_file(options.config.partition(":")[0], "--config")
  runner = common.Runner(options.dry_run)
  if not options.dry_run:
    common.require_program("gcloud", "install the Google Cloud CLI "
                           "(https://cloud.google.com/sdk/docs/install) and run `gcloud auth "
                           "login`; or add --dry-run to only print the commands")
  cloud = Cloud(project=_setting(runner, options.project, "--project", "CLOUDSDK_CORE_PROJECT",
                                 "project"),
                zone=_setting(runner, options.zone, "--zone", "CLOUDSDK_COMPUTE_ZONE",
                              "compute/zone"),
                spot=options.spot, queued=options.queued)
  launcher = Launcher(cloud, runner, options.name)
  if command in ("up", "create"):
    launcher.create(tpu)
  if command in ("up", "install"):
    launcher.install()
  if command in ("up", "train"):
    launcher.train(options.workdir, options.config, args)
  if command == "eval":
    launcher.evaluate(tpu, options.workdir, options.eval_worker, options.eval_tpu_type, args)
  if command == "logs":
    launcher.logs(options.job, options.worker, options.eval_worker, options.follow)
  if command == "delete":
    launcher.delete()


def main(argv: list[str]) -> int:
  return common.main("launch/tpu.py", lambda: run(argv))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
