"""Issue 6: interruptions (SIGINT, SIGTERM, SIGKILL, a kill during a checkpoint write), resume,
divergence rollback, and damaged checkpoints. Every resumed run is compared with the same run
left alone: on the CPU it must end with exactly the same mask."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import latentdim
from latentdim import losses
from latentdim.checkpoint import FORMAT_VERSION, read_checkpoint
from latentdim.errors import LatentdimError, TrainingInterrupted
from latentdim.models import ModelSpec, build_model
from latentdim.training import TrainConfig, train
from clihelpers import one_error_line, run

SOURCE = "synthetic:n=2,d=16,samples=600"
MAX_STEPS = 260
ARGS = [SOURCE, "--capacity", "3", "--width", "16", "--batch-size", "32", "--max-steps", str(MAX_STEPS),
        "--no-baselines", "--json"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def config():
    return TrainConfig(batch_size=32, max_steps=MAX_STEPS, warmup_steps=50, settle_window=100, stable_window=50,
                       refine_steps=60)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run (CLI defaults are the same settings as ``config`` minus the schedule
    windows, so the reference is computed through the CLI in-process)."""
    result = run("estimate", *ARGS)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def start(out, *extra):
    cmd = [sys.executable, "-m", "latentdim", "estimate", *ARGS, "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for_step(out, at_least, proc, timeout=120):
    """Waits until checkpoint.pt holds a step >= at_least (polled), while ``proc`` runs."""
    path = out / "checkpoint.pt"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                if read_checkpoint(path).get("step", 0) >= at_least:
                    return
            except LatentdimError:
                pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def killed_run(tmp_path, at_least):
    """A run SIGKILLed once its checkpoint holds a step >= at_least; its folder."""
    out = tmp_path / "run"
    proc = start(out, "--checkpoint-every", "20")
    wait_for_step(out, at_least, proc)
    proc.kill()
    proc.communicate()
    return out


def resume(out):
    result = run("estimate", *ARGS, "--out", out, "--resume", out)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(("sig", "code", "after"), [(signal.SIGINT, 130, 20), (signal.SIGTERM, 143, 140)])
@pytest.mark.slow
def test_signal_checkpoints_and_resume_matches(tmp_path, reference, sig, code, after):
    out = tmp_path / "run"
    proc = start(out, "--checkpoint-every", "20")
    wait_for_step(out, after, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stdout == ""  # --json prints nothing for an unfinished run
    assert "resume with:" in stderr and "--resume" in stderr and "Traceback" not in stderr
    state = read_checkpoint(out / "checkpoint.pt")
    assert state["finished"] is False and state["step"] >= after
    finished = resume(out)
    assert finished["mask"] == reference["mask"]
    assert finished["steps"] == reference["steps"]
    assert finished["frechet_distance"] == reference["frechet_distance"]


@pytest.mark.parametrize("after", [100])
@pytest.mark.slow
def test_sigkill_resumes_from_the_last_complete_checkpoint(tmp_path, reference, after):
    out = killed_run(tmp_path, after)
    assert read_checkpoint(out / "checkpoint.pt")["step"] >= after
    assert resume(out)["mask"] == reference["mask"]


@pytest.mark.slow
def test_resume_without_out_names_the_run_folder(tmp_path):
    out = killed_run(tmp_path, 100)
    result = run("estimate", *[a for a in ARGS if a != "--json"], "--resume", out)
    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.stderr.replace("\n", "")


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, reference):
    # The 3rd checkpoint write dies half-way (SIGKILL from inside torch.save): the file on disk
    # must still be the 2nd checkpoint, the temporary is cleaned up, and the run resumes.
    out = tmp_path / "run"
    driver = (
        "import os, signal, sys, torch, latentdim.checkpoint as c\n"
        "real = torch.save\ncount = [0]\n"
        "def dying(obj, f, *a, **k):\n"
        "    count[0] += 1\n"
        "    if count[0] == 3:\n"
        "        f.write(b'PK\\x03\\x04 half a checkpoint'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(obj, f, *a, **k)\n"
        "c.torch.save = dying\n"
        "from latentdim.cli import app\n"
        f"sys.argv = ['latentdim', 'estimate', *{ARGS!r}, '--out', {str(out)!r}, '--checkpoint-every', '20']\n"
        "app()\n"
    )
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert list(out.glob(".checkpoint.pt.*.tmp"))  # the half-written temporary
    assert read_checkpoint(out / "checkpoint.pt")["step"] == 40  # the 2nd checkpoint, intact
    assert resume(out)["mask"] == reference["mask"]
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_resume_refuses_a_different_run_and_a_finished_one(tmp_path, reference):
    out = killed_run(tmp_path, 20)
    other = [a if a != "3" else "4" for a in ARGS]  # capacity 4
    line = one_error_line(run("estimate", *other, "--resume", out))
    assert "capacity" in line and "repeat the original command" in line
    line = one_error_line(run("estimate", *ARGS, "--seed", "5", "--resume", out))
    assert "seed" in line
    line = one_error_line(run("estimate", *ARGS, "--resume", out, "--out", tmp_path / "elsewhere"))
    assert "own folder" in line
    resume(out)  # ends at its --max-steps before settling: only a larger limit continues it
    line = one_error_line(run("estimate", *ARGS, "--resume", out))
    assert "stopped at its step limit" in line and "larger --max-steps" in line


@pytest.mark.slow
def test_a_run_saved_before_the_closing_options_resumes_with_the_rule_it_started_with(tmp_path, reference):
    out = killed_run(tmp_path, 40)
    state = read_checkpoint(out / "checkpoint.pt")
    for field in ("closing", "eliminate_retries", "eliminate_hold"):  # what an earlier latentdim's lacks
        del state["config"][field]
    state["config"]["budget_hold"] = 450
    torch.save(state, out / "checkpoint.pt")
    assert resume(out)["mask"] == reference["mask"]
    config = read_checkpoint(out / "checkpoint.pt")["config"]
    assert config["closing"] == "pressure" and config["eliminate_retries"] == 0 and config["eliminate_hold"] == 450


def damaged(tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    path = folder / "checkpoint.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "not_a_dict":
        torch.save([1, 2, 3], path)
    elif kind in ("truncated", "newer", "mismatched", "unknown_version"):
        model = build_model(ModelSpec("mlp", (16,), 3, 16))
        state = {"format_version": FORMAT_VERSION, "latentdim_version": "0", "finished": False, "step": 1,
                 "model_spec": {"preset": "mlp", "data_shape": [16], "capacity": 3, "width": 16, "use_mask": True},
                 "model": model.state_dict(), "train_state": {}, "config": {}, "seed": 0, "source": "x"}
        if kind == "newer":
            state["format_version"] = FORMAT_VERSION + 1
        if kind == "unknown_version":
            state["format_version"] = "one"
        if kind == "mismatched":
            state["model"] = build_model(ModelSpec("mlp", (16,), 5, 16)).state_dict()
        torch.save(state, path)
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "is empty"),
        ("garbage", "not a readable latentdim checkpoint"),
        ("truncated", "not a readable latentdim checkpoint"),
        ("not_a_dict", "not a latentdim checkpoint"),
        ("newer", "newer than this latentdim"),
        ("unknown_version", "unknown checkpoint format"),
    ],
)
def test_damaged_checkpoints_are_one_line(tmp_path, kind, message):
    folder = damaged(tmp_path, kind)
    assert message in one_error_line(run("estimate", *ARGS, "--resume", folder))
    assert message in one_error_line(run("export", folder, "-o", tmp_path / "m.onnx"))


def test_format_1_checkpoints(tmp_path):
    """Format 2 gave the convolutional decoders coordinate channels: a format-1 conv model is
    refused in one line, a format-1 vector model (unchanged networks) still exports."""
    for preset, shape in (("fmnist", (1, 28, 28)), ("mlp", (16,))):
        folder = tmp_path / preset
        folder.mkdir()
        spec = ModelSpec(preset, shape, 3, 16)
        model = build_model(spec)
        if preset == "fmnist":  # the format-1 decoder: no coordinate channels, so other shapes
            model.decoder = torch.nn.Sequential(torch.nn.Linear(3, 4))
        state = {"format_version": 1, "latentdim_version": "0.1.0", "finished": True, "step": 1,
                 "model_spec": {"preset": preset, "data_shape": list(shape), "capacity": 3, "width": 16,
                                "use_mask": True},
                 "model": model.state_dict(), "train_state": {}, "config": {}, "seed": 0, "source": "x"}
        torch.save(state, folder / "checkpoint.pt")
    message = one_error_line(run("export", tmp_path / "fmnist", "-o", tmp_path / "a.onnx"))
    assert "latentdim 0.1.0" in message and "no coordinate channels" in message and "run estimate again" in message
    assert not (tmp_path / "a.onnx").exists()
    with pytest.raises(LatentdimError, match="no coordinate channels"):
        read_checkpoint(tmp_path / "fmnist" / "checkpoint.pt")
    assert read_checkpoint(tmp_path / "mlp" / "checkpoint.pt")["format_version"] == 1


def test_mismatched_checkpoint_is_one_line(tmp_path):
    folder = damaged(tmp_path, "mismatched")
    assert "damaged" in one_error_line(run("export", folder, "-o", tmp_path / "m.onnx"))


class NanOnce:
    """Replaces the reconstruction loss with NaN on the chosen calls."""

    def __init__(self, bad_calls):
        self.bad, self.calls, self.real = set(bad_calls), 0, losses.reconstruction

    def __call__(self, *args, **kwargs):
        self.calls += 1
        value = self.real(*args, **kwargs)
        return value * float("nan") if self.calls in self.bad else value


def tiny_model():
    torch.manual_seed(0)
    return build_model(ModelSpec("mlp", (16,), 3, 16))


@pytest.mark.slow
def test_a_nan_rolls_back_and_halves_the_learning_rates(monkeypatch):
    data = torch.randn(256, 16)
    fault = NanOnce({30})  # the AE loss of step 30 (one reconstruction call a step while the mask is frozen)
    monkeypatch.setattr(losses, "reconstruction", fault)
    model = tiny_model()
    seen = []
    out = train(model, data, config(), on_checkpoint=lambda s: seen.append(s["step"]), checkpoint_steps=20)
    assert out.stop_reason != "diverged" and out.steps > 30
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert seen[:2] == [20, 40]  # the fault at step 30 went back to the step-20 state, then on


@pytest.mark.slow
def test_rollback_state_and_halved_rates_are_checkpointed(monkeypatch):
    data = torch.randn(256, 16)
    monkeypatch.setattr(losses, "reconstruction", NanOnce({30}))
    states = []
    train(tiny_model(), data, config(), on_checkpoint=states.append, checkpoint_steps=20)
    lrs = [s["optimisers"]["ae"]["param_groups"][0]["lr"] for s in states]
    assert lrs[0] == pytest.approx(5e-4)  # step 20, before the fault
    assert all(lr == pytest.approx(2.5e-4) for lr in lrs[1:])  # after the rollback
    assert [s["step"] for s in states][:2] == [20, 40]  # the fault at step 30 rolled back to 20
    assert all(s["retries"] == 1 for s in states[1:])


def test_second_divergence_stops_at_the_last_good_state(monkeypatch):
    data = torch.randn(256, 16)
    monkeypatch.setattr(losses, "reconstruction", NanOnce(range(30, 10_000)))  # NaN from step 30 on
    states = []
    model = tiny_model()
    out = train(model, data, config(), on_checkpoint=states.append, checkpoint_steps=20)
    assert out.stop_reason == "diverged"
    assert states[-1]["step"] == 20
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, states[-1]["model"][name])


def test_divergence_through_the_api_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(losses, "reconstruction", NanOnce(range(30, 10_000)))
    with pytest.raises(LatentdimError, match="diverged") as info:
        latentdim.estimate(SOURCE, capacity=3, width=16, config=config(), baselines=False, out=tmp_path,
                           checkpoint_steps=20)
    assert f"last good checkpoint is {tmp_path / 'checkpoint.pt'}" in str(info.value)
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 20


def test_should_stop_raises_with_the_checkpoint(tmp_path):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 15

    with pytest.raises(TrainingInterrupted) as info:
        latentdim.estimate(SOURCE, capacity=3, width=16, config=config(), baselines=False, out=tmp_path,
                           should_stop=stop)
    assert info.value.step == 15 and info.value.checkpoint == str(tmp_path / "checkpoint.pt")
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 15


def test_checkpoint_every_is_validated():
    assert "--checkpoint-every" in one_error_line(run("estimate", *ARGS, "--checkpoint-every", "soon"))
    assert "--checkpoint-every" in one_error_line(run("estimate", *ARGS, "--checkpoint-every", "0"))


def test_preflight_refuses_an_output_folder_without_room(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    line = one_error_line(run("estimate", *ARGS, "--out", tmp_path / "run"))
    assert "MiB free" in line and "another --out" in line
