"""Tutorial 7: your own model through the CLI. A model written outside the package
(`examples/conv_vae.py`) is trained with `jaxvae train`, killed with SIGKILL and resumed, then
evaluated, sampled and plotted like any built-in one."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from docs.tutorials import common
from examples import conv_vae
from jaxvae.runtime.metrics import read_jsonl
from jaxvae.runtime.trained import load_trained

NAME = "custom_model"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
CONFIG = os.path.join(EXAMPLES, "conv_vae_config.py")


def jaxvae(*args: str, wait: bool = True):
  """`jaxvae ARGS` in a subprocess that can import the user's module (PYTHONPATH=examples)."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as a user's
  env["PYTHONPATH"] = EXAMPLES
  command = [sys.executable, "-m", "jaxvae.cli", *args]
  if not wait:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  done = subprocess.run(command, env=env, capture_output=True, text=True)
  if done.returncode:
    raise RuntimeError(f"jaxvae {' '.join(args)} failed: {done.stderr[-2000:]}")
  return done.stdout


def run(out_dir: str, tiny: bool = False) -> dict:
  steps, every, k = (40, 10, 100) if tiny else (2000, 500, 1000)
  flags = [f"--config={CONFIG}", f"--config.train.num_steps={steps}",
           f"--config.train.checkpoint_every={every}", f"--config.train.log_every={every // 2}",
           "--config.train.progress_bar=false", f"--config.eval.num_samples={k}"]
  runs = tempfile.mkdtemp()
  whole, killed = os.path.join(runs, "whole"), os.path.join(runs, "killed")
  jaxvae("train", f"--workdir={whole}", *flags)
  process = jaxvae("train", f"--workdir={killed}", *flags, wait=False)
  while not os.path.isdir(os.path.join(killed, "checkpoints", str(every))):
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = max([int(s) for s in os.listdir(os.path.join(killed, "checkpoints")) if s.isdigit()])
  jaxvae("train", f"--workdir={killed}", *flags)
  if EXAMPLES not in sys.path:  # This process reads the runs too: PYTHONPATH=examples here.
    sys.path.insert(0, EXAMPLES)
  a, b = (load_trained(w).variables for w in (whole, killed))
  bit_exact = all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  evaluation = jaxvae("eval", f"--workdir={killed}", f"--num_samples=1,10,{k}").strip()
  jaxvae("sample", f"--workdir={killed}", "--kind=interpolations", "--images=0,1,2,3,4,5",
         f"--out={os.path.join(out_dir, 'images', NAME + '_interpolations.png')}")
  jaxvae("plot", f"--workdir={killed}", f"--out={os.path.join(out_dir, 'images', NAME + '.png')}")
  record = [r for r in read_jsonl(os.path.join(killed, "eval", "log_likelihood.jsonl"))
            if r["num_samples"] == k and r["step"] == steps][0]
  numbers = {"steps": steps, "killed_at": killed_at, "bit_exact": bit_exact,
             "log_px": record["log_px"], "stderr": record["log_px_stderr"], "k": k,
             "user_lines": len(open(conv_vae.__file__).read().splitlines())}
  common.write_page(out_dir, NAME, f"""
# Your own model, from the command line

A model is any Flax module that answers the model interface of `jaxvae/models/interface.py`:
`log_weights(x, keys, labels)`, the `[K, B]` terms of `log p(x, z_k) - log q(z_k | x)`, and
`sample` and `reconstruct`. Everything else (the trainer, checkpoints, the evaluator, the image
grids) works from these. A model may declare capabilities; this one declares `LATENT_VECTOR`
(`latent_code`, `decode_latent`), so the trainer also draws interpolations and traversals.

This convolutional VAE with a learned Gaussian prior lives outside the package, in
`examples/conv_vae.py` ({numbers['user_lines']} lines):

{common.listing(conv_vae)}

Its config names it by import path, `module:Class`; the class's fields (all but `data_shape`) are
the `model` section, with their defaults:

```python
{open(CONFIG).read().strip()}
```

Train it (the module must be importable), kill the trainer, resume it, evaluate, sample, plot:

```bash
export PYTHONPATH=examples
jaxvae train --config=examples/conv_vae_config.py --workdir=runs/conv   # kill -9 it, rerun it
jaxvae eval --workdir=runs/conv --num_samples=1,10,{k}
jaxvae sample --workdir=runs/conv --kind=interpolations --images=0,1,2,3,4,5
jaxvae plot --workdir=runs/conv
```

Here a run of {steps} steps was killed with SIGKILL after its checkpoint of step {killed_at} and
rerun with the same command: it resumed there, and its final parameters are
{'bit-for-bit equal' if bit_exact else 'NOT equal'} to those of an uninterrupted run.
`jaxvae eval` then printed:

```
{evaluation}
```

![interpolations between test digits](images/{NAME}_interpolations.png)

![training and evaluation curves](images/{NAME}.png)
""")
  return numbers
