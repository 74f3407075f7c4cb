"""The live display of `estimate` (one rich live line at a time) and the stages the API reports."""

import io

import numpy as np
from rich.console import Console

import latentdim
from latentdim.progress import RunDisplay, run_display
from latentdim.train import StepStats, TrainConfig


def _step(step: int) -> StepStats:
    return StepStats(step=step, reconstruction=0.25, wasserstein=0.1, m_active=3, undecided=1, lambda3=2.5,
                     beta=5.0, phase="closing")


def test_every_part_takes_over_the_line_from_the_one_before():
    # rich refuses a second live display while one runs (LiveError): each part must stop the last.
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=150)
    with run_display(100, console) as display:
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
    for words in ("decoding images", "classical estimators", "step      2/100", "m_A 3 (1 undecided)",
                  "evaluating on 200 samples", "FID: Inception features", "128/128", "writing pictures"):
        assert words in text, words


def test_a_file_gets_the_last_training_bar_only():
    # Not a terminal (a log file): step lines are transient and leave nothing; the training bar
    # leaves its final state once.
    buffer = io.StringIO()
    display = RunDisplay(10, Console(file=buffer, force_terminal=False, width=150))
    display.on_stage("classical estimators")
    display.on_step(_step(7))
    display.on_stage("evaluating")
    display.close()
    text = buffer.getvalue()
    assert "classical" not in text and "evaluating" not in text
    assert text.count("step      7/10") == 1


def test_the_api_names_each_slow_step(tmp_path):
    stages = []
    x = np.random.default_rng(0).normal(size=(100, 6)).astype("float32")
    latentdim.estimate(x, capacity=3, config=TrainConfig(max_steps=3, batch_size=16), width=16,
                       out=tmp_path / "run", export=tmp_path / "g.onnx", on_stage=lambda *a: stages.append(a))
    assert [s[0].split(" ")[0] for s in stages] == ["classical", "evaluating", "writing", "exporting"]
    assert stages[0] == ("classical estimators (TwoNN, MLE, lPCA) on 100 samples",)
    assert stages[1] == ("evaluating on 100 samples (Frechet distance, precision and recall)",)
