"""One process of the 2-process localhost evaluation test (`test_two_processes_...`).

Usage: python two_process_worker.py PORT PROCESS_ID OUT.npz (2 forced CPU devices per process).
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(port: str, process_id: str, out: str) -> None:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                             process_id=int(process_id), initialization_timeout=60)
  assert jax.process_count() == 2 and len(jax.devices()) == 4
  from test_evaluator import NUM_SAMPLES_2P, toy_eval_config, run_linear_gaussian

  results = run_linear_gaussian(toy_eval_config(), NUM_SAMPLES_2P)
  if jax.process_index() == 0:
    np.savez(out, **results)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(*sys.argv[1:])
