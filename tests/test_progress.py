"""The live display of `estimate` (one rich live line at a time) and the stages the API reports."""

import io

import numpy as np
from rich.console import Console

import latentdim
from latentdim.progress import RunDisplay, run_display
from latentdim.training import StepStats, TrainConfig


def _step(step: int, phase: str = "close", left: int | None = None) -> StepStats:
    return StepStats(step=step, reconstruction=0.25, wasserstein=0.1, m_active=3, undecided=1, lambda3=2.5,
                     beta=5.0, phase=phase, phase_left=left)


def test_every_part_takes_over_the_line_from_the_one_before():
    # rich refuses a second live display while one runs (LiveError): each part must stop the last.
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=150)
    with run_display(console) as display:
        display.on_load(1, 2)
        display.on_load(2, 2)
        display.on_stage("classical estimators (TwoNN, MLE, lPCA) on 200 samples")
        display.on_step(_step(1))
        display.on_step(_step(2))
        display.on_stage("evaluating on 200 samples")
        display.on_stage("FID: Inception features", 64, 128)
        display.on_stage("FID: Inception features", 128, 128)
        display.on_stage("writing pictures and report to out")
    text = buffer.getvalue()
    for words in ("decoding images", "classical estimators", "step 2", "m_A 3 (1 undecided)",
                  "evaluating on 200 samples", "FID: Inception features", "128/128", "writing pictures"):
        assert words in text, words


def test_a_log_gets_plain_lines_at_phase_changes_and_the_last_report(monkeypatch):
    # Not a terminal (a log file): no live lines or escape codes; each slow step once, a training
    # line at each change of phase, the ones in between held back but the last one written.
    now = [0.0]
    monkeypatch.setattr("latentdim.progress.time.monotonic", lambda: now[0])
    buffer = io.StringIO()
    display = RunDisplay(Console(file=buffer, force_terminal=False, width=80))
    display.on_stage("classical estimators")
    for t, stats in enumerate([
        _step(25, "warmup", 9_975),  # the first report: no rate yet, no time left
        _step(50, "warmup", 9_950),  # same phase, 1 s later: held back
        _step(75, "hold", 425),  # new phase: written, with its time left (25 steps/s)
        _step(100, "hold", 400),  # held back, then written before the next stage
    ], start=1):
        now[0] = float(t)
        display.on_step(stats)
    now[0] = 10.0
    display.on_stage("evaluating", 1, 2)
    display.on_stage("evaluating", 2, 2)  # the same stage: not repeated
    display.close()
    lines = buffer.getvalue().splitlines()
    assert "\x1b" not in buffer.getvalue()
    assert [ln.split("] ", 1)[1].split(";")[0] for ln in lines] == [
        "classical estimators", "training: warm-up (all dims open, until the fit plateaus)",
        "training: checking a closing round, 0:00:17 left",  # 425 steps at 25 steps/s
        "training: checking a closing round, 0:00:16 left", "evaluating (2)",
    ]
    assert "step 100  m_A 3 (1 undecided)" in lines[3]
    assert all(len(ln) > 0 for ln in lines)


def test_the_api_names_each_slow_step(tmp_path):
    stages = []
    x = np.random.default_rng(0).normal(size=(100, 6)).astype("float32")
    latentdim.estimate(x, capacity=3, config=TrainConfig(max_steps=3, batch_size=16), width=16,
                       out=tmp_path / "run", export=tmp_path / "g.onnx", on_stage=lambda *a: stages.append(a))
    assert [s[0].split(" ")[0] for s in stages] == ["classical", "evaluating", "writing", "exporting"]
    assert stages[0] == ("classical estimators (TwoNN, MLE, lPCA) on 100 samples",)
    assert stages[1] == ("evaluating on 100 samples (Frechet distance, precision and recall)",)
