"""`jaxvae train | eval | sample`: flags in, one library call out, nothing else.

    jaxvae train  --workdir=DIR [--config=configs/NAME.py[:smoke]] [--config.KEY=VALUE ...]
    jaxvae eval   --workdir=DIR [--num_samples=K] [--split=test] [--step=N]
    jaxvae sample --workdir=DIR [--num=64] [--out=FILE.png] [--seed=0] [--step=N]

Mistakes (unknown flags or config keys, bad values, missing data or checkpoints) print one line
`jaxvae: error: ...` and exit with code 2.
"""

import os
import sys

from absl import flags

from jaxvae.errors import UserError

COMMANDS = ("train", "eval", "sample")
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.py")


def _define_flags(command: str) -> flags.FlagValues:
  from ml_collections import config_flags

  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "Run directory: config, checkpoints, metrics, eval, images.",
                      flag_values=fv)
  if command == "train":
    config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "Config file (a Python file with get_config()); ':smoke' "
        "selects its smoke variant. Default: the embedded digits VAE.", flag_values=fv,
        lock_config=True)
  elif command == "eval":
    flags.DEFINE_integer("num_samples", None, "K importance samples (default: eval.num_samples).",
                         flag_values=fv)
    flags.DEFINE_string("split", None, "Split to evaluate (default: data.eval_split).",
                        flag_values=fv)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
  else:
    flags.DEFINE_integer("num", 64, "Number of samples.", flag_values=fv)
    flags.DEFINE_string("out", "samples.png", "Output PNG file.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed of the samples.", flag_values=fv)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
  return fv


def _parse(argv: list[str]):
  if len(argv) < 2 or argv[1] not in COMMANDS:
    raise UserError(f"usage: jaxvae {{{'|'.join(COMMANDS)}}} --workdir=DIR [flags]; "
                    f"'jaxvae COMMAND --help' lists a command's flags")
  command = argv[1]
  fv = _define_flags(command)
  if any(a in ("--help", "-h", "--helpfull") for a in argv[2:]):
    print(__doc__)
    print(fv.get_help())
    raise SystemExit(0)
  try:
    fv([argv[0]] + argv[2:])
    config = fv.config if command == "train" else None
  except flags.Error as e:
    raise UserError(f"{e}") from None
  except (KeyError, AttributeError, TypeError, ValueError, OSError, SyntaxError) as e:
    raise UserError(f"bad --config: {type(e).__name__}: {e}") from None
  if not fv.workdir:
    raise UserError(f"jaxvae {command} needs --workdir=DIR")
  return command, fv, config


def run(argv: list[str]) -> None:
  """Parses `argv` and runs the command; raises `UserError` on a mistake the user can fix."""
  command, fv, config = _parse(argv)
  if command == "train":
    from jaxvae.train import train_and_evaluate

    train_and_evaluate(config, fv.workdir)
  elif command == "eval":
    from jaxvae import config as config_lib
    from jaxvae.eval import evaluate

    config = config_lib.load_config(os.path.join(fv.workdir, "config.json"))
    evaluate(config, fv.workdir, step=fv.step, split=fv.split, num_samples=fv.num_samples)
  else:
    from jaxvae.eval import sample_to_png

    sample_to_png(fv.workdir, fv.num, fv.out, seed=fv.seed, step=fv.step)


def main(argv: list[str] | None = None) -> None:
  try:
    run(sys.argv if argv is None else argv)
  except UserError as e:
    print(f"jaxvae: error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


if __name__ == "__main__":
  main()
