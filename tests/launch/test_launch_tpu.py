"""launch/tpu.py: TPU types, the gcloud commands of a v4-8 and a v5e-16 pod slice (dry run), a real
run against a fake gcloud (the same commands; preempted slices are recreated), the worker's
background command, and one-line errors."""

import json
import os
import shlex
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # launch/ is a directory of scripts next to the package.

from launch import tpu  # noqa: E402

PLACE = ["--zone=us-central2-b", "--project=my-project"]
Z = "--zone=us-central2-b --project=my-project"


def _dry_run(capsys, *argv):
  assert tpu.main([argv[0], "--dry-run", *argv[1:]]) == 0, capsys.readouterr().err
  return capsys.readouterr().out.splitlines()


# From the Cloud TPU docs: v2/v3/v4/v5p sizes count TensorCores (2 per chip, 4 chips per VM);
# v5e/v6e count chips, with 1, 4 or 8 chips on one VM and 4 chips per VM in larger slices.
@pytest.mark.parametrize("name, accelerator_type, hosts, version, smallest", [
    ("v2-8", "v2-8", 1, "tpu-ubuntu2204-base", "v2-8"),
    ("v3-32", "v3-32", 4, "tpu-ubuntu2204-base", "v3-8"),
    ("v4-8", "v4-8", 1, "tpu-ubuntu2204-base", "v4-8"),
    ("v4-16", "v4-16", 2, "tpu-ubuntu2204-base", "v4-8"),
    ("v4-128", "v4-128", 16, "tpu-ubuntu2204-base", "v4-8"),
    ("v5p-8", "v5p-8", 1, "v2-alpha-tpuv5", "v5p-8"),
    ("v5p-64", "v5p-64", 8, "v2-alpha-tpuv5", "v5p-8"),
    ("v5litepod-1", "v5litepod-1", 1, "v2-alpha-tpuv5-lite", "v5litepod-1"),
    ("v5litepod-8", "v5litepod-8", 1, "v2-alpha-tpuv5-lite", "v5litepod-1"),
    ("v5e-16", "v5litepod-16", 4, "v2-alpha-tpuv5-lite", "v5litepod-1"),
    ("v5litepod-256", "v5litepod-256", 64, "v2-alpha-tpuv5-lite", "v5litepod-1"),
    ("v6e-4", "v6e-4", 1, "v2-alpha-tpuv6e", "v6e-1"),
    ("v6e-32", "v6e-32", 8, "v2-alpha-tpuv6e", "v6e-1"),
])
def test_tpu_types(name, accelerator_type, hosts, version, smallest):
  assert tpu.tpu_slice(name) == tpu.TpuSlice(accelerator_type, hosts, version, smallest)


def test_dry_run_of_a_v4_8_single_host(capsys, monkeypatch):
  monkeypatch.setenv("PATH", "")  # A dry run needs no gcloud: it runs nothing.
  lines = _dry_run(capsys, "up", "--name=vae", "--tpu_type=v4-8", *PLACE,
                   "--workdir=gs://bucket/runs/vae", "--config=configs/digits_vae.py:smoke",
                   "--", "--config.train.num_steps=100")
  train = ("cd ~/jaxvae && if [ -f ~/jaxvae_train.pid ] && kill -0 \"$(cat ~/jaxvae_train.pid)\" "
           "2>/dev/null; then echo \"$(hostname): jaxvae train is already running\"; else nohup "
           "python3 -m jaxvae.cli train --workdir=gs://bucket/runs/vae "
           "--config=configs/digits_vae.py:smoke --config.train.num_steps=100 >> "
           "~/jaxvae_train.log 2>&1 < /dev/null & echo $! > ~/jaxvae_train.pid; fi")
  sources = " ".join(os.path.relpath(os.path.join(ROOT, s)) for s in tpu.SHIPPED)
  assert lines == [
      f"# if TPU VM vae does not exist (gcloud compute tpus tpu-vm describe vae "
      f"--format='value(state)' {Z} prints nothing); one in state "
      f"PREEMPTED/TERMINATED/STOPPED/FAILED/SUSPENDED is deleted first",
      f"gcloud compute tpus tpu-vm create vae --accelerator-type=v4-8 "
      f"--version=tpu-ubuntu2204-base {Z}",
      f"gcloud compute tpus tpu-vm ssh vae --worker=all --command='mkdir -p jaxvae' {Z}",
      f"gcloud compute tpus tpu-vm scp --recurse {sources} vae:jaxvae --worker=all {Z}",
      f"gcloud compute tpus tpu-vm ssh vae --worker=all --command='python3 -m pip install --quiet "
      f"--upgrade \"jax[tpu]\" \"./jaxvae[gcs]\"' {Z}",
      f"gcloud compute tpus tpu-vm ssh vae --worker=all --command={shlex.quote(train)} {Z}",
  ]


def test_dry_run_of_a_v5e_16_pod_slice_runs_on_all_4_workers(capsys):
  flags = ["--name=vae", "--tpu_type=v5e-16", *PLACE, "--spot"]
  lines = _dry_run(capsys, "up", *flags, "--workdir=gs://bucket/runs/vae")
  assert lines[1] == (f"gcloud compute tpus tpu-vm create vae --accelerator-type=v5litepod-16 "
                      f"--version=v2-alpha-tpuv5-lite --spot {Z}")
  ssh = [shlex.split(line) for line in lines if " tpu-vm ssh " in line]
  assert len(ssh) == 3 and all("--worker=all" in argv for argv in ssh)
  assert "jaxvae.cli train --workdir=gs://bucket/runs/vae >>" in ssh[-1][7]
  # The 4 workers need one workdir: a local path is refused before anything runs.
  assert tpu.main(["up", "--dry-run", *flags, "--workdir=runs/vae"]) == 2
  captured = capsys.readouterr()
  assert captured.out == "" and captured.err == (
      "launch/tpu.py: error: --workdir=runs/vae is not shared by the 4 workers of v5litepod-16; "
      "give a Cloud Storage path, --workdir=gs://BUCKET/PATH\n")


def test_queued_spot_resources_are_created_waited_for_and_deleted(capsys):
  lines = _dry_run(capsys, "create", "--name=vae", "--tpu_type=v6e-8", *PLACE, "--queued",
                   "--spot")
  assert lines[1:] == [
      f"gcloud compute tpus queued-resources create vae --node-id=vae --accelerator-type=v6e-8 "
      f"--runtime-version=v2-alpha-tpuv6e --spot {Z}",
      f"# then wait until gcloud compute tpus queued-resources describe vae "
      f"--format='value(state.state)' {Z} prints ACTIVE"]
  lines = _dry_run(capsys, "delete", "--name=vae", *PLACE, "--queued")
  assert lines == ["# if vae exists",
                   f"gcloud compute tpus queued-resources delete vae --force --quiet {Z}",
                   "# if vae-eval exists",
                   f"gcloud compute tpus queued-resources delete vae-eval --force --quiet {Z}"]


def test_eval_on_a_separate_vm_or_on_a_named_worker(capsys):
  flags = ["--name=vae", "--tpu_type=v5e-16", *PLACE, "--workdir=gs://bucket/runs/vae"]
  lines = _dry_run(capsys, "eval", *flags, "--", "--num_samples=1,1000")
  assert lines[1].startswith("gcloud compute tpus tpu-vm create vae-eval "
                             "--accelerator-type=v5litepod-1 ")
  last = shlex.split(lines[-1])
  assert last[:7] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "vae-eval", "--worker=0"]
  assert "nohup python3 -m jaxvae.cli eval --workdir=gs://bucket/runs/vae --follow " \
         "--num_samples=1,1000 >> ~/jaxvae_eval.log" in last[7]
  lines = _dry_run(capsys, "eval", *flags, "--eval_worker=3")
  assert len(lines) == 1 and shlex.split(lines[0])[5:7] == ["vae", "--worker=3"]
  assert "JAX_PLATFORMS=cpu nohup python3 -m jaxvae.cli eval" in lines[0]
  assert _dry_run(capsys, "logs", "--name=vae", *PLACE, "--job=eval", "--follow") == [
      f"gcloud compute tpus tpu-vm ssh vae-eval --worker=0 "
      f"--command='tail -n 100 -F ~/jaxvae_eval.log' {Z}"]


_GCLOUD = """import json, os, sys
args = sys.argv[1:]
with open(os.environ["GCLOUD_LOG"], "a") as f:
  f.write(json.dumps(args) + "\\n")
if os.environ.get("GCLOUD_ERROR") and args[:2] != ["config", "get-value"]:
  sys.exit(f"ERROR: (gcloud.{'.'.join(args[:4])}) {os.environ['GCLOUD_ERROR']}\\nPlease run:\\n\\n"
           f"  $ gcloud auth login")
if args[:3] == ["config", "get-value", "project"]:
  print(os.environ.get("GCLOUD_PROJECT", ""))
elif args[:3] == ["config", "get-value", "compute/zone"]:
  print("us-central2-b")
elif "describe" in args:
  state = json.loads(os.environ["GCLOUD_STATES"]).get(args[4])
  if state is None:
    sys.exit(f"ERROR: (gcloud.{'.'.join(args[:4])}) NOT_FOUND: Resource 'projects/p/locations/z/"
             f"nodes/{args[4]}' was not found")
  print(state)
"""


@pytest.fixture
def fake_gcloud(tmp_path, monkeypatch):
  """A gcloud on PATH that records its arguments; `describe` answers from GCLOUD_STATES."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{_GCLOUD}")
  (bin_dir / "gcloud").chmod(stat.S_IRWXU)
  monkeypatch.setenv("PATH", str(bin_dir))
  monkeypatch.setenv("GCLOUD_LOG", str(tmp_path / "log"))
  monkeypatch.setenv("GCLOUD_PROJECT", "my-project")
  monkeypatch.chdir(ROOT)

  def calls(states):
    monkeypatch.setenv("GCLOUD_STATES", json.dumps(states))
    (tmp_path / "log").write_text("")
    return lambda: [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]

  return calls


@pytest.mark.parametrize("state, created", [(None, True), ("READY", False), ("PREEMPTED", True)])
def test_real_up_runs_the_dry_run_commands_and_recreates_a_preempted_slice(capsys, fake_gcloud,
                                                                           state, created):
  argv = ["up", "--name=vae", "--tpu_type=v4-8", "--workdir=gs://b/r", "--spot"]
  expected = [shlex.split(line) for line in _dry_run(capsys, *argv, *PLACE)
              if not line.startswith("#")]
  calls = fake_gcloud({"vae": state} if state else {})
  assert tpu.main(argv) == 0  # Project and zone from `gcloud config get-value`.
  ran = [["gcloud", *c] for c in calls() if c[:2] != ["config", "get-value"]]
  describe = ["gcloud", "compute", "tpus", "tpu-vm", "describe", "vae", "--format=value(state)",
              *PLACE]
  delete = ["gcloud", "compute", "tpus", "tpu-vm", "delete", "vae", "--quiet", *PLACE]
  assert ran[0] == describe
  assert ran[1:] == ([delete] if state == "PREEMPTED" else []) + expected[0 if created else 1:]
  printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("+ ")]
  assert [shlex.split(line[2:]) for line in printed] == ran[1:]  # Each printed before it ran.


def test_the_worker_command_starts_the_job_once(tmp_path):
  (tmp_path / "jaxvae").mkdir()
  command = tpu.detached("train", [sys.executable, "-c", "import time; time.sleep(20)"])
  env = dict(os.environ, HOME=str(tmp_path))
  first = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
  pid = int((tmp_path / "jaxvae_train.pid").read_text())
  try:
    second = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    assert first.stdout == "" and second.stdout.endswith(": jaxvae train is already running\n")
    assert int((tmp_path / "jaxvae_train.pid").read_text()) == pid
    os.kill(pid, 0)  # Still running after its shell exited.
  finally:
    os.kill(pid, 9)
  for _ in range(100):  # Once it is gone, the next call starts it anew.
    if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode:
      break
    time.sleep(0.05)
  subprocess.run(["bash", "-c", command], env=env, check=True)
  new_pid = int((tmp_path / "jaxvae_train.pid").read_text())
  assert new_pid != pid
  os.kill(new_pid, 9)


@pytest.mark.parametrize("argv, message", [
    (["create", "--name=vae", "--tpu_type=v4-8"],
     "gcloud not found on PATH; install the Google Cloud CLI"),
    (["create", "--dry-run", "--name=vae", "--tpu_type=v4-7", *PLACE],
     "--tpu_type=v4-7: v4 sizes count TensorCores, a multiple of 8 (8 per VM); e.g. v4-8"),
    (["create", "--dry-run", "--name=vae", "--tpu_type=v5e-12", *PLACE],
     "--tpu_type=v5e-12: v5litepod slices have 1, 4, 8, 16, 32, 64, 128, 256 chips"),
    (["create", "--dry-run", "--name=vae", "--tpu_type=tpu-8", *PLACE],
     "--tpu_type=tpu-8 is not a Cloud TPU type; give GENERATION-SIZE, e.g. v4-8"),
    (["create", "--dry-run", "--name=vae", "--tpu_type=v4-8", "--zone=us-central2-b"],
     "no Cloud project set; a dry run asks gcloud nothing: pass --project=... or set "
     "CLOUDSDK_CORE_PROJECT"),
    (["create", "--dry-run", "--name=vae", "--tpu_type=v4-8", "--project=my-project"],
     "no Cloud zone set; a dry run asks gcloud nothing: pass --zone=... or set "
     "CLOUDSDK_COMPUTE_ZONE"),
    (["create", "--dry-run", "--name=Vae_1", "--tpu_type=v4-8", *PLACE],
     "--name=Vae_1 is not a TPU name"),
    (["eval", "--dry-run", "--name=vae", "--tpu_type=v4-8", *PLACE, "--workdir=gs://b/r",
      "--eval_worker=1"], "--eval_worker=1 is not a worker of v4-8 (workers 0 to 0)"),
])
def test_mistakes_are_one_line_and_exit_2(tmp_path, argv, message):
  env = {"PATH": str(tmp_path)}  # No gcloud here, and no CLOUDSDK_* settings.
  result = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "tpu.py"), *argv], env=env,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.startswith(f"launch/tpu.py: error: {message}")
  assert len(result.stderr.splitlines()) == 1


def test_an_unset_project_in_a_real_run_names_gcloud_config(capsys, fake_gcloud, monkeypatch):
  fake_gcloud({})
  monkeypatch.setenv("GCLOUD_PROJECT", "")
  assert tpu.main(["delete", "--name=vae"]) == 2
  assert capsys.readouterr().err == ("launch/tpu.py: error: no Cloud project set; pass "
                                     "--project=... or run `gcloud config set project VALUE`\n")


def test_delete_skips_only_what_gcloud_says_is_not_found(capsys, fake_gcloud):
  calls = fake_gcloud({"vae": "READY"})
  assert tpu.main(["delete", "--name=vae"]) == 0
  deleted = [c for c in calls() if "delete" in c]
  assert [c[4] for c in deleted] == ["vae"]  # vae-eval: NOT_FOUND, so nothing to delete.
  assert "# vae-eval does not exist: nothing to delete" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["delete"], ["up", "--tpu_type=v4-8", "--workdir=gs://b/r"]])
def test_a_gcloud_failure_is_reported_never_read_as_does_not_exist(capsys, fake_gcloud,
                                                                    monkeypatch, command):
  calls = fake_gcloud({})
  monkeypatch.setenv("GCLOUD_ERROR", "You do not currently have an active account selected.")
  assert tpu.main([command[0], "--name=vae", *command[1:]]) == 1
  out, err = capsys.readouterr()
  assert "does not exist" not in out
  assert err.splitlines() == [
      "launch/tpu.py: `gcloud compute tpus tpu-vm describe vae --format='value(state)' "
      "--zone=us-central2-b --project=my-project` failed: ERROR: (gcloud.compute.tpus.tpu-vm."
      "describe) You do not currently have an active account selected."]
  assert not [c for c in calls() if "delete" in c or "create" in c]
