"""Several ranks training one model (training/distributed.py): torchrun with gloo on this CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentdim.training.distributed import World, launched_rank, launched_size

WORKER = Path(__file__).with_name("distributed_worker.py")


def _torchrun(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_one_process_world_changes_nothing():
    w = World()
    grads = (torch.tensor([1.0, 2.0]), torch.tensor([[3.0]]))
    assert w.average(grads) is grads
    assert w.agree(0.25, torch.device("cpu")) == 0.25
    assert w.any([False, True], torch.device("cpu")) == [False, True]
    assert w.share(64) == 64 and w.main and not w.parallel


def test_launcher_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_size() == 1 and launched_rank() == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert launched_size() == 2 and launched_rank() == 1
    assert World(rank=1, size=2).share(64) == 32


@pytest.mark.slow
def test_two_ranks_keep_identical_weights_and_mask(tmp_path):
    # every phase runs (warm-up, elimination rounds with rollbacks, the fresh verification, refine with
    # re-standardisation);
    # averaged gradients and rank 0's probe numbers keep the two ranks' models bit for bit equal
    done = _torchrun([str(WORKER), str(tmp_path), "900"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["world"] == 2
    assert torch.equal(r0["mask"], r1["mask"])
    for name, t in r0["model"].items():
        assert torch.equal(t, r1["model"][name]), name
    assert r0["steps"] == r1["steps"] and r0["rounds"] == r1["rounds"]
    assert len(r0["rounds"]) >= 1  # the closing rule ran
    assert len(r0["verification"]) >= 2 and r0["verification"] == r1["verification"]  # and the fresh check


@pytest.mark.slow
def test_torchrun_cli_writes_once(tmp_path):
    out = tmp_path / "run"
    done = _torchrun(["-m", "latentdim", "estimate", "synthetic:n=2,d=8,samples=1000", "--capacity", "4", "--max-steps", "60",
                      "--out", str(out), "--no-baselines", "--json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 1 prints nothing
    result = json.loads(lines[0])
    assert result["steps"] == 60 and result["files"]["result"] == str(out / "result.json")
    assert json.loads((out / "result.json").read_text())["steps"] == 60


@pytest.mark.slow
def test_torchrun_batch_must_split(tmp_path):
    done = _torchrun(["-m", "latentdim", "estimate", "synthetic:n=2,d=8,samples=1000", "--capacity", "4", "--batch-size", "63",
                      "--max-steps", "10", "--no-baselines"], cwd=tmp_path)
    assert done.returncode != 0
    assert "does not split evenly over 2 processes" in done.stderr


@pytest.mark.slow
def test_rank_zero_refusal_ends_the_others_in_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text("{}")  # an earlier run
    done = _torchrun(["-m", "latentdim", "estimate", "synthetic:n=2,d=8,samples=1000", "--capacity", "4", "--max-steps", "10",
                      "--out", str(out), "--no-baselines"], cwd=tmp_path)
    assert done.returncode != 0
    assert "already holds a run" in done.stderr
    assert "[rank1]: Traceback" not in done.stderr
    assert (out / "result.json").read_text() == "{}"  # nothing lost
