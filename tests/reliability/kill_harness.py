"""Kill-and-resume harness: `jaxvae train` killed at random moments and restarted, until it ends.

    python tests/reliability/kill_harness.py --kills=100 [--follow] [--seed=0] [--root=DIR]

Runs the tiny smoke config of the embedded digits twice: once straight through (the reference),
and once killed `--kills` times and restarted after each kill. The kinds of kill take turns (each
once per round, in random order):
  - `sigkill-anytime`: SIGKILL at a uniform moment in the first 1.5 x the latest observed time from
    a start to the run's first checkpoint (start-up, restore, compilation, first steps and saves);
  - `sigkill-mid-save`: SIGKILL the moment an asynchronous checkpoint save has created its
    temporary directory (after 0, 1 or 2 saves of that run);
  - `sigterm`: SIGTERM (preemption) while steps run; the trainer must save and exit with code 0.
With `--follow`, an eval job (`jaxvae eval --follow`) follows the checkpoints the whole time.

Then it checks, and reports as figures: the final train state (parameters, optimizer state, key,
counters) equals the reference bit for bit; every checkpoint step of the reference exists and is
equal; every step seen finalized during the soak is still there (files lost = 0); no step was set
aside as damaged and no temporary directory is left; metrics.jsonl parses; with `--follow`, the eval
job evaluated every surviving checkpoint exactly once. Exit code 1 if any check fails. The fast CI
test (tests/reliability/test_kill_and_resume.py) runs the same `soak` with a few kills.
"""

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ("sigkill-anytime", "sigkill-mid-save", "sigterm")
CHECKPOINT_EVERY = 4
FOLLOW_K = 1  # the eval job's K (the trainer's own final evaluation uses eval.num_samples)


@dataclasses.dataclass
class Trial:
  """One run of the trainer: how it was stopped and what it left."""

  mode: str
  returncode: int
  signalled: bool  # False: the run ended by itself before its signal was due.
  tmp_dir_at_kill: bool  # A save's temporary directory existed when the signal was sent.
  latest_step: int | None  # The newest finalized step after the run.
  first_step_s: float | None  # Seconds from the start to the run's first own finalized step.


def environment(root: str, devices: int = 2) -> dict:
  """The trainer's environment: CPU, `devices` forced devices, a shared compilation cache."""
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
              JAX_COMPILATION_CACHE_DIR=os.path.join(root, "jax_cache"),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def train_command(workdir: str, data_dir: str, num_steps: int) -> list[str]:
  return [sys.executable, "-m", "jaxvae.cli", "train", f"--workdir={workdir}",
          "--config=" + os.path.join(ROOT, "configs", "digits_vae.py") + ":smoke",
          f"--config.data.data_dir={data_dir}", f"--config.train.num_steps={num_steps}",
          f"--config.train.checkpoint_every={CHECKPOINT_EVERY}",
          f"--config.train.log_every={CHECKPOINT_EVERY}", "--config.train.steps_per_call=2",
          f"--config.train.keep_checkpoints={num_steps}"]


def _listing(workdir: str) -> list[str]:
  try:
    return os.listdir(os.path.join(workdir, "checkpoints"))
  except FileNotFoundError:
    return []


def finalized_steps(workdir: str) -> list[int]:
  return sorted(int(name) for name in _listing(workdir) if name.isdigit())


def _tmp_dirs(workdir: str) -> set[str]:
  return {name for name in _listing(workdir) if ".orbax-checkpoint-tmp" in name}


def _run(command: list[str], env: dict, log_path: str) -> subprocess.Popen:
  with open(log_path, "a") as log:
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def run_once(command, env, workdir, log_path, mode, rng, window, poll=0.001) -> Trial:
  """Starts the trainer, sends the signal of `mode` at its random moment (`sigkill-anytime`:
  uniform in [0, `window`] seconds after the start), waits for the exit."""
  stale, steps_before = _tmp_dirs(workdir), set(finalized_steps(workdir))  # Killed saves' dirs.
  process = _run(command, env, log_path)
  start, saves_seen, first_step_s = time.monotonic(), set(), None
  deadline = start + rng.uniform(0, window)  # sigkill-anytime
  saves_to_skip = rng.randrange(3)  # sigkill-mid-save
  term_after = rng.uniform(0, 0.5)  # sigterm: this long after the run's first own step
  signalled, tmp_at_kill = False, False
  while process.poll() is None:
    now, tmp = time.monotonic(), _tmp_dirs(workdir)
    stale &= tmp  # Gone once the trainer cleaned it up; a new save may reuse its name.
    tmp -= stale
    if first_step_s is None and set(finalized_steps(workdir)) - steps_before:
      first_step_s = now - start
    if mode == "sigkill-anytime":
      due = now >= deadline
    elif mode == "sigkill-mid-save":
      due = len(saves_seen | tmp) > saves_to_skip and bool(tmp)
      saves_seen |= tmp
    elif mode == "sigterm":
      due = first_step_s is not None and now - start >= first_step_s + term_after
    else:  # to-the-end
      due = False
    if due:
      tmp_at_kill = bool(tmp)
      process.send_signal(signal.SIGTERM if mode == "sigterm" else signal.SIGKILL)
      signalled = True
      break
    time.sleep(poll)
  returncode = process.wait(timeout=300)
  return Trial(mode, returncode, signalled, tmp_at_kill, (finalized_steps(workdir) or [None])[-1],
               first_step_s)


def restore_target(workdir: str):
  """The abstract train state of the run in `workdir` (from its config.json), on one device."""
  import jax

  from jaxvae.config import load_config
  from jaxvae.data import load_split
  from jaxvae.models import build_model
  from jaxvae.runtime import mesh as mesh_lib
  from jaxvae.train import state as state_lib

  config = load_config(os.path.join(workdir, "config.json"))
  shape = load_split(config.data, config.data.train_split).image_shape
  model = build_model(config.model, shape)
  optimizer, _ = state_lib.make_optimizer(config.train)
  one = mesh_lib.replicated(mesh_lib.make_mesh(1))
  shapes = jax.eval_shape(lambda: state_lib.init_state(model, optimizer, shape, jax.random.key(0),
                                                        ema=config.train.ema_decay > 0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=one), shapes)


def equal_states(workdir: str, reference: str, step: int, target) -> bool:
  """Whether the train states of `step` in the two workdirs are equal bit for bit."""
  import jax
  import numpy as np

  from jaxvae.runtime.checkpoint import Checkpoints

  a = Checkpoints(workdir, read_only=True).restore(step, target)
  b = Checkpoints(reference, read_only=True).restore(step, target)
  leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in leaves)


def _ledger_counts(workdir: str) -> dict[int, int]:
  from jaxvae.runtime.metrics import read_jsonl

  counts = {}
  for record in read_jsonl(os.path.join(workdir, "eval", "log_likelihood.jsonl")):
    if record["num_samples"] == FOLLOW_K and record["split"] == "test":
      counts[record["step"]] = counts.get(record["step"], 0) + 1
  return counts


def soak(root: str, data_dir: str, kills: int, seed: int = 0, follow: bool = False,
         modes: tuple[str, ...] = MODES) -> dict:
  """Runs the reference and the killed run under `root`; returns the figures and the failures."""
  rng = random.Random(seed)
  num_steps = CHECKPOINT_EVERY * (4 * kills + 6)
  env = environment(root)
  reference, workdir = os.path.join(root, "reference"), os.path.join(root, "killed")
  start = time.monotonic()
  process = _run(train_command(reference, data_dir, num_steps), env,
                 os.path.join(root, "reference.log"))
  while process.poll() is None and not finalized_steps(reference):
    time.sleep(0.01)
  window = 1.5 * (time.monotonic() - start)  # start-up and a few steps
  if process.wait() != 0:
    raise RuntimeError(f"the reference run failed; see {root}/reference.log")
  log_path = os.path.join(root, "killed.log")
  job = None
  if follow:
    job = _run([sys.executable, "-m", "jaxvae.cli", "eval", f"--workdir={workdir}", "--follow",
                f"--num_samples={FOLLOW_K}", "--poll_seconds=0.2", "--timeout=600"],
               env, os.path.join(root, "follow.log"))
  command = train_command(workdir, data_dir, num_steps)
  trials, seen, failures = [], set(), []
  order = []
  while sum(t.signalled for t in trials) < kills:
    order = order or rng.sample(modes, len(modes))  # Each mode once per round, in random order.
    trial = run_once(command, env, workdir, log_path, order.pop(), rng, window)
    trials.append(trial)
    if trial.first_step_s is not None:  # Restarts start faster (compilation cache): adapt.
      window = 1.5 * trial.first_step_s
    seen |= set(finalized_steps(workdir))
    expected = {"sigterm": (0, -signal.SIGTERM)}.get(trial.mode, (-signal.SIGKILL,))
    if not trial.signalled:
      if trial.returncode != 0:
        failures.append(f"run {len(trials)} ({trial.mode}) failed with code {trial.returncode}")
      break  # The run ended by itself: trained and evaluated.
    if trial.returncode not in expected:
      failures.append(f"run {len(trials)} ({trial.mode}) exited with {trial.returncode}")
  final = run_once(command, env, workdir, log_path, "to-the-end", rng, 0)
  if final.returncode != 0:
    failures.append(f"the final run failed with code {final.returncode}")
  seen |= set(finalized_steps(workdir))
  follow_counts = None
  if job is not None:
    try:
      if job.wait(timeout=300) != 0:
        failures.append(f"the eval job exited with {job.returncode}")
    except subprocess.TimeoutExpired:
      job.kill()
      failures.append("the eval job did not end within 300 s of the trainer")
    follow_counts = _ledger_counts(workdir)

  target = restore_target(reference)
  steps, reference_steps = finalized_steps(workdir), finalized_steps(reference)
  lost = sorted(seen - set(steps))
  missing = sorted(set(reference_steps) - set(steps))
  unequal = [s for s in reference_steps if s in steps and not equal_states(workdir, reference, s,
                                                                            target)]
  leftovers = sorted(n for n in _listing(workdir) if not n.isdigit())
  with open(log_path) as f:
    preempted = f.read().count("Preempted (SIGTERM) at step")
  try:
    from jaxvae.runtime.metrics import read_jsonl

    read_jsonl(os.path.join(workdir, "metrics.jsonl"))
    metrics_ok = True
  except ValueError:
    metrics_ok = False
  failures += [f"steps lost: {lost}"] * bool(lost) + [f"steps missing: {missing}"] * bool(missing)
  failures += [f"steps unequal to the reference: {unequal}"] * bool(unequal)
  failures += [f"left in checkpoints/: {leftovers}"] * bool(leftovers)
  failures += ["metrics.jsonl does not parse"] * (not metrics_ok)
  if num_steps not in steps or num_steps in unequal:
    failures.append("the final state differs from the reference")
  if follow_counts is not None:
    twice = sorted(s for s, n in follow_counts.items() if n > 1)
    unevaluated = sorted(set(steps) - set(follow_counts))
    failures += [f"evaluated more than once: {twice}"] * bool(twice)
    failures += [f"never evaluated: {unevaluated}"] * bool(unevaluated)
  signalled = [t for t in trials if t.signalled]
  return {
      "kills": len(signalled),
      "by_mode": {m: sum(t.mode == m for t in signalled) for m in modes},
      "mid_save_kills": sum(t.tmp_dir_at_kill and t.mode != "sigterm" for t in signalled),
      "clean_preemptions": preempted,
      "restarts": len(trials),
      "num_steps": num_steps,
      "steps_compared": sum(s in steps for s in reference_steps),
      "steps_seen": len(seen),
      "files_lost": len(lost) + len(missing),
      "evaluated_once": None if follow_counts is None else sum(
          n == 1 for n in follow_counts.values()),
      "final_bit_exact": num_steps in steps and num_steps not in unequal,
      "seconds": round(time.monotonic() - start, 1),
      "failures": failures,
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--kills", type=int, default=100)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--follow", action="store_true", help="run the eval job alongside")
  parser.add_argument("--root", default=None, help="work directory (default: a new temporary one)")
  parser.add_argument("--data_dir", default=None, help="tfds data dir (default: under --root)")
  args = parser.parse_args(argv)
  import tempfile

  root = args.root or tempfile.mkdtemp(prefix="jaxvae_soak_")
  os.environ.update(JAX_PLATFORMS="cpu")
  figures = soak(root, args.data_dir or os.path.join(root, "tensorflow_datasets"), args.kills,
                 args.seed, args.follow)
  print(json.dumps(figures, indent=2))
  return 1 if figures["failures"] else 0


if __name__ == "__main__":
  sys.path.insert(0, ROOT)  # This checkout's jaxvae, as the trainer's PYTHONPATH says.
  sys.exit(main())
