"""`jaxvae train | eval | sample | plot`: flags in, one library call out, nothing else.

    jaxvae train  --workdir=DIR [--config=configs/NAME.py[:smoke]] [--config.KEY=VALUE ...]
    jaxvae eval   --workdir=DIR [--num_samples=K[,K2,...]] [--split=test] [--step=N | --follow]
                  [--refine_steps=N] [--poll_seconds=10] [--timeout=SECONDS]
    jaxvae sample --workdir=DIR [--kind=samples|temperatures|reconstructions|interpolations|
                  traversals|groups]
                  [--num=64] [--out=FILE.png] [--seed=0] [--step=N] [--temperature=1.0]
                  [--label=C] [--images=I,J,...] [--steps=10] [--radius=3.0]
    jaxvae plot   --workdir=DIR [--workdir=DIR2 ...] [--out=FILE.png]

Mistakes (unknown flags or config keys, bad values, missing data or checkpoints) print one line
`jaxvae: error: ...` and exit with code 2.
"""

import os
import sys

from absl import flags

from jaxvae.errors import UserError
from jaxvae.runtime import workdir as workdir_lib

COMMANDS = ("train", "eval", "sample", "plot")
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.py")


def _define_flags(command: str, args: list[str]) -> flags.FlagValues:
  """The flags of `command`; `args` (program name, then flags) tells config_flags the overrides."""
  from ml_collections import config_flags

  fv = flags.FlagValues()
  if command == "plot":
    flags.DEFINE_multi_string("workdir", None, "Run directory; repeat it to compare runs on one "
                              "figure.", flag_values=fv)
    flags.DEFINE_string("out", None, "Output PNG file (default: curves.png in the first workdir).",
                        flag_values=fv)
    return fv
  flags.DEFINE_string("workdir", None, "Run directory: config, checkpoints, metrics, eval, images.",
                      flag_values=fv)
  if command == "train":
    saved = _saved_config(args)
    if saved:  # A run's config.json: its values, with the command line's overrides.
      from jaxvae import config as config_lib

      config_flags.DEFINE_config_dict(
          "config", config_lib.load_config(saved), "A run's config.json.", flag_values=fv,
          lock_config=True, sys_argv=[a for a in args if not a.startswith("--config=")])
    else:
      config_flags.DEFINE_config_file(
          "config", DEFAULT_CONFIG, "Config file (a Python file with get_config(), or a run's "
          "config.json); ':smoke' selects its smoke variant. Default: the embedded digits VAE.",
          flag_values=fv, lock_config=True, sys_argv=args)
    flags.DEFINE_string("coordinator_address", None, "Multi-process jobs: HOST:PORT of process 0 "
                        "(with --num_processes and --process_id). None of the three on a Cloud "
                        "TPU VM (automatic) or a single machine.", flag_values=fv)
    flags.DEFINE_integer("num_processes", None, "Multi-process jobs: number of processes.",
                         flag_values=fv)
    flags.DEFINE_integer("process_id", None, "Multi-process jobs: this process's rank in "
                         "[0, num_processes).", flag_values=fv)
    flags.DEFINE_integer("heartbeat_timeout", 100, "Multi-process jobs: seconds without a "
                         "heartbeat after which a process counts as dead and the job stops.",
                         lower_bound=1, flag_values=fv)
  elif command == "eval":
    flags.DEFINE_list("num_samples", None, "K importance samples, or several K reported from one "
                      "pass, e.g. 1,10,100,1000,5000 (default: eval.nested_num_samples and "
                      "eval.num_samples).", flag_values=fv)
    flags.DEFINE_string("split", None, "Split to evaluate (default: data.eval_split).",
                        flag_values=fv)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
    flags.DEFINE_integer("refine_steps", None, "Refine each example's posterior by this many "
                         "gradient steps on its own ELBO and report the amortization gap "
                         "(default: eval.refine_steps).", flag_values=fv)
    flags.DEFINE_bool("follow", False, "Run as the evaluation job: evaluate every new checkpoint "
                      "once, exit after the final one.", flag_values=fv)
    flags.DEFINE_float("poll_seconds", 10.0, "--follow: seconds between looks for new checkpoints.",
                       flag_values=fv)
    flags.DEFINE_float("timeout", None, "--follow: give up after this many seconds without a new "
                       "checkpoint (default: wait for ever).", flag_values=fv)
  else:
    flags.DEFINE_string("kind", "samples", "Grid: samples | temperatures (one row of samples "
                        "per temperature, 1.0 to 0.3) | reconstructions (test images next to "
                        "theirs) | interpolations (between pairs of test images) | traversals "
                        "(one latent dimension per row) | groups (test images reconstructed from "
                        "their top 0, 1, 2, 4, ..., G latent groups, the rest from the prior).",
                        flag_values=fv)
    flags.DEFINE_integer("num", 64, "samples: images; temperatures: images per temperature; "
                         "reconstructions, groups: test images; traversals: latent dimensions "
                         "(at most model.latent_dim).", flag_values=fv)
    flags.DEFINE_string("out", None, "Output PNG file (default: KIND.png in the workdir, as plot "
                        "writes curves.png there).", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed of the samples.", flag_values=fv)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
    flags.DEFINE_float("temperature", 1.0, "samples, groups: scale of the prior's noise (N(0, I) "
                       "priors, hierarchies of groups; 0 decodes the prior mean).", flag_values=fv)
    flags.DEFINE_integer("label", None, "samples of a conditional VAE: draw this class (default: "
                         "cycle through the classes).", flag_values=fv)
    flags.DEFINE_list("images", ["0", "1"], "Test-image indices: pairs for interpolations, the "
                      "first one for traversals.", flag_values=fv)
    flags.DEFINE_integer("steps", 10, "interpolations, traversals: images per row.",
                         flag_values=fv)
    flags.DEFINE_float("radius", 3.0, "traversals: each dimension runs over [-radius, radius].",
                       flag_values=fv)
  return fv


USAGE = """usage: jaxvae COMMAND --workdir=DIR [flags]   ('jaxvae COMMAND --help': its flags)

  train   train (resuming from the workdir's latest checkpoint), then evaluate log p(x)
  eval    importance-sampled log p(x) of a checkpoint, or of each new one with --follow
  sample  a PNG grid: samples, reconstructions, interpolations, traversals, top-group views
  plot    the training and evaluation curves of one or more runs"""


def _saved_config(args: list[str]) -> str | None:
  """The path of `--config=PATH.json` (a run's saved config) among `args`, else None."""
  paths = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
  return paths[-1] if paths and paths[-1].endswith(".json") else None


def _closest_key(config, args: list[str]) -> str:
  """For the first `--config.KEY=...` override that `config` lacks: ' (did you mean ...?)'."""
  import difflib

  def keys(c, prefix=""):
    for k, v in c.items():
      yield from keys(v, f"{prefix}{k}.") if hasattr(v, "items") else [f"{prefix}{k}"]

  known = list(keys(config))
  for arg in args:
    key = arg[len("--config."):].split("=", 1)[0] if arg.startswith("--config.") else None
    if key and key not in known:
      close = difflib.get_close_matches(key, known, n=1)
      return f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
  return ""


def _base_config(args: list[str]):
  """The config of `--config` (or the default) without the command line's overrides."""
  base = [args[0]] + [a for a in args[1:] if a.startswith("--config=")]
  fv = _define_flags("train", base)
  fv([a for a in base if not (_saved_config(base) and a.startswith("--config="))])
  return fv.config


def _parse(argv: list[str]):
  if len(argv) >= 2 and argv[1] in ("--help", "-h", "--helpfull", "help"):
    print(USAGE)
    raise SystemExit(0)
  if len(argv) < 2 or argv[1] not in COMMANDS:
    raise UserError(f"usage: jaxvae {{{'|'.join(COMMANDS)}}} --workdir=DIR [flags]; "
                    f"'jaxvae COMMAND --help' lists a command's flags")
  command, args = argv[1], [argv[0]] + argv[2:]
  for arg in args[1:]:
    if arg.startswith("--config=") and not os.path.isfile(arg.split("=", 1)[1].split(":")[0]):
      raise UserError(f"config file {arg.split('=', 1)[1].split(':')[0]!r} not found; give the path "
                      f"of a file in configs/, e.g. --config=configs/digits_vae.py")
  saved = _saved_config(args) if command == "train" else None
  flag_args = [a for a in args if not (saved and a.startswith("--config="))]
  try:
    fv = _define_flags(command, args)
    if any(a in ("--help", "-h", "--helpfull") for a in args[1:]):
      print(__doc__)
      print(fv.get_help())
      raise SystemExit(0)
    fv(flag_args)
    config = fv.config if command == "train" else None
    if config is not None:
      from jaxvae.config import validate

      validate(config)  # Also forces the config file to load, so its errors surface here.
  except UserError:
    raise
  except flags.Error as e:
    raise UserError(str(e).replace("\\n", " ")) from None
  except (KeyError, AttributeError) as e:  # An override of a key the config does not have.
    unknown = _closest_key(_base_config(args), args) if command == "train" else ""
    message = unknown or str(e.args[0] if e.args else e).strip("'\"").replace("\\n", " ")
    raise UserError(f"unknown config key {message}; see jaxvae/config.py for the keys") from None
  except Exception as e:  # Anything a config file raises while it loads.
    files = [a.split("=", 1)[1] for a in args if a.startswith("--config=")] or [DEFAULT_CONFIG]
    raise UserError(f"cannot load --config={files[-1]}: {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}") from None
  if not fv.workdir:
    raise UserError(f"jaxvae {command} needs --workdir=DIR")
  return command, fv, config


def _int_list(values: list[str] | None, flag: str) -> list[int] | None:
  if values is None:
    return None
  try:
    return [int(v) for v in values]
  except ValueError:
    raise UserError(f"{flag} must be comma-separated integers, e.g. {flag}=1,10,100,1000,5000; "
                    f"got {','.join(values)}") from None


def run(argv: list[str]) -> None:
  """Parses `argv` and runs the command; raises `UserError` on a mistake the user can fix."""
  command, fv, config = _parse(argv)
  if command == "train":
    from jaxvae.runtime import distributed
    from jaxvae.train import train_and_evaluate

    distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id,
                           fv.heartbeat_timeout)
    with distributed.stop_when_a_peer_fails():
      train_and_evaluate(config, fv.workdir)
  elif command == "eval":
    from jaxvae import config as config_lib
    from jaxvae.eval import evaluate

    num_samples = _int_list(fv.num_samples, "--num_samples")
    if fv.follow:
      from jaxvae.eval import follow

      if fv.step is not None:
        raise UserError("--step and --follow exclude each other: --follow evaluates every step")
      follow(fv.workdir, split=fv.split, num_samples=num_samples, refine_steps=fv.refine_steps,
             poll_seconds=fv.poll_seconds, timeout_seconds=fv.timeout)
      return
    config = config_lib.load_config(workdir_lib.config_path(fv.workdir))
    evaluate(config, fv.workdir, step=fv.step, split=fv.split, num_samples=num_samples,
             refine_steps=fv.refine_steps)
  elif command == "plot":
    from jaxvae.plot import plot_runs

    plot_runs(fv.workdir, fv.out or workdir_lib.curves_path(fv.workdir[0]))
  else:
    from jaxvae.eval import sample_to_png

    sample_to_png(fv.workdir, fv.num, fv.out or workdir_lib.grid_path(fv.workdir, fv.kind),
                  seed=fv.seed, step=fv.step, kind=fv.kind,
                  temperature=fv.temperature, label=fv.label,
                  images=tuple(_int_list(fv.images, "--images")), steps=fv.steps,
                  radius=fv.radius)


def main(argv: list[str] | None = None) -> None:
  try:
    run(sys.argv if argv is None else argv)
  except UserError as e:
    print(f"jaxvae: error: {e}", file=sys.stderr)
    raise SystemExit(2) from None
  except KeyboardInterrupt:  # Before training started (data, compilation): nothing to save.
    print("jaxvae: interrupted (Ctrl-C) before anything was saved", file=sys.stderr)
    raise SystemExit(130) from None


if __name__ == "__main__":
  main()
