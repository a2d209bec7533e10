"""Regenerates the documentation from the code: the tutorial pages with their figures, the README's
pictures, and the API reference.

    python -m docs.build                        # every tutorial, full mode, into docs/tutorials/
    python -m docs.build --only=elbo_iwae       # one tutorial
    python -m docs.build --tiny --out=/tmp/d    # tiny mode, seconds each (what tests run)
    python -m docs.build --readme               # docs/images/ from the default run (a minute or two)
    python -m docs.build --api [--out=docs/api] # the API reference from the docstrings (pdoc)
"""

import argparse
import importlib
import os
import pathlib
import pkgutil
import shutil
import time

DOCS = os.path.dirname(os.path.abspath(__file__))
TUTORIALS = ("latent_variables", "elbo_iwae", "gradient_variance", "posteriors", "vqvae",
             "scaling", "custom_model", "gradient_estimators", "deep_hierarchies")


def build_tutorial(name: str, out_dir: str, tiny: bool = False) -> dict:
  """Runs tutorial `name` (`docs/tutorials/<name>.py`), writing `out_dir/<name>.md` and its
  images under `out_dir/images/`; returns its numbers."""
  module = importlib.import_module(f"docs.tutorials.{name}")
  start = time.perf_counter()
  numbers = module.run(out_dir, tiny=tiny)
  print(f"{name}: {time.perf_counter() - start:.1f} s -> {os.path.join(out_dir, name + '.md')}",
        flush=True)
  return numbers


def build_api(out_dir: str) -> str:
  """Writes the API reference of the `jaxvae` package (every module's docstrings) as HTML into
  `out_dir`; returns the path of its index page. Needs the `docs` extra (pdoc)."""
  import pdoc
  import pdoc.render

  import jaxvae

  modules = ["jaxvae"] + sorted(  # Submodules that `jaxvae` re-exports are documented with it.
      m.name for m in pkgutil.walk_packages(jaxvae.__path__, "jaxvae.")
      if m.name.split(".", 1)[1] not in jaxvae.__all__)
  pdoc.render.configure(docformat="google", footer_text="jaxvae")
  pdoc.pdoc(*modules, output_directory=pathlib.Path(out_dir))
  return os.path.join(out_dir, "index.html")


def build_readme_images(workdir: str, images_dir: str, tiny: bool = False) -> None:
  """The README's pictures from the default run (`jaxvae train --workdir=WORKDIR`, its kept
  checkpoints evaluated at K = 1, 10, 100, 1000, then `jaxvae plot`) into `images_dir`."""
  from jaxvae import config as config_lib
  from jaxvae.eval import evaluate
  from jaxvae.plot import plot_runs
  from jaxvae.runtime import checkpoint as checkpoint_lib
  from jaxvae.train import train_and_evaluate

  config = config_lib.get_config("smoke" if tiny else "")
  config.train.progress_bar = False
  train_and_evaluate(config, workdir)
  checkpoints = checkpoint_lib.Checkpoints(workdir, read_only=True)
  steps = checkpoints.all_steps()
  checkpoints.close()
  for step in steps:
    evaluate(config, workdir, step=step, num_samples=[1, 10, 100, 1000])
  os.makedirs(images_dir, exist_ok=True)
  plot_runs([workdir], os.path.join(images_dir, "curves.png"))
  for kind in ("samples", "reconstructions", "interpolations", "traversals"):
    shutil.copy(os.path.join(workdir, "images", f"{kind}_{steps[-1]:08d}.png"),
                os.path.join(images_dir, f"{kind}.png"))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--only", choices=TUTORIALS, action="append", help="tutorials to build")
  parser.add_argument("--tiny", action="store_true", help="tiny mode: seconds per tutorial")
  parser.add_argument("--out", help="output directory (default: docs/tutorials, docs/api, "
                      "docs/images)")
  parser.add_argument("--readme", action="store_true", help="the README's images")
  parser.add_argument("--api", action="store_true", help="the API reference")
  parser.add_argument("--workdir", default="runs/digits_vae", help="--readme: the default run")
  args = parser.parse_args()
  if args.api:
    print(f"API reference: {build_api(args.out or os.path.join(DOCS, 'api'))}")
  elif args.readme:
    build_readme_images(args.workdir, args.out or os.path.join(DOCS, "images"), args.tiny)
  else:
    # 8 CPU devices, as in the tests, so that the scaling tutorial has a mesh to shard over.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
    for name in args.only or TUTORIALS:
      build_tutorial(name, args.out or os.path.join(DOCS, "tutorials"), args.tiny)


if __name__ == "__main__":
  main()
