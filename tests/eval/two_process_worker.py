"""One of two processes on localhost (2 forced CPU devices each, gloo collectives) for the tests.

    python two_process_worker.py PORT PROCESS_ID estimate OUT.npz   # the linear-Gaussian estimate
    python two_process_worker.py PORT PROCESS_ID follow WORKDIR     # the follow job on a finished run
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(port: str, process_id: str, mode: str, path: str) -> None:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                             process_id=int(process_id), initialization_timeout=60)
  assert jax.process_count() == 2 and len(jax.devices()) == 4
  if mode == "estimate":
    from test_evaluator import NUM_SAMPLES_2P, run_linear_gaussian, toy_eval_config

    results = run_linear_gaussian(toy_eval_config(), NUM_SAMPLES_2P)
    if jax.process_index() == 0:
      np.savez(path, **results)
  else:
    from jaxvae.eval import follow

    print("steps", follow(path, num_samples=(5,), poll_seconds=0.05, timeout_seconds=60))
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])
