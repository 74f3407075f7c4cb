"""The command line through Typer's CliRunner: --json, the result table and every bad input."""

import json

import h5py
import numpy as np
import pytest
import torch
from clihelpers import one_error_line, run
TINY = ["--width", "16", "--max-steps", "5", "--batch-size", "16"]




def test_json_is_the_only_stdout():
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--json", *TINY)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # exactly one JSON object, nothing else
    for key in ("m_active", "capacity", "mask", "undecided", "steps", "seconds", "reconstruction_error",
                "wasserstein", "frechet_distance", "nac", "precision", "recall", "baselines", "seed", "preset",
                "source", "version"):
        assert key in payload
    assert payload["capacity"] == 4 and len(payload["mask"]) == 4 and payload["steps"] == 5
    assert payload["source"] == "synthetic:n=2,d=8,samples=200,seed=0"
    assert payload["m_active"] == sum(v >= 0.1 for v in payload["mask"])
    assert set(payload["baselines"]) == {"twonn", "mle", "lpca"}
    assert 0.0 <= payload["precision"] <= 1.0 and 0.0 <= payload["recall"] <= 1.0


def test_table_shows_m_a_beside_the_classical_estimators():
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", *TINY)
    assert result.exit_code == 0, result.output
    row = next(ln for ln in result.stdout.splitlines() if "TwoNN" in ln)  # the summary is on stdout
    assert "m_A" in row and "MLE" in row and "lPCA" in row
    assert "precision / recall (k = 3)" in result.stdout and "m_A | TwoNN" not in result.stderr


def test_no_baselines_skips_them():
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--no-baselines", "--json", *TINY)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["baselines"] is None
    table = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--no-baselines", *TINY)
    assert "skipped (--no-baselines)" in table.stdout and "TwoNN" not in table.stdout


def test_table_and_out_dir(tmp_path):
    out = tmp_path / "run"
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    assert "active dimensions m_A" in result.stdout and "active dimensions" not in result.stderr
    saved = json.loads((out / "result.json").read_text())
    assert saved["capacity"] == 4 and set(saved["baselines"]) == {"twonn", "mle", "lpca"}
    history = (out / "mask_history.csv").read_text().splitlines()
    assert history[0] == "step,mu_0,mu_1,mu_2,mu_3" and len(history) >= 2
    curves = (out / "losses.csv").read_text().splitlines()
    assert curves[0] == "step,phase,reconstruction,wasserstein" and len(curves) == len(history)
    assert [row.split(",")[0] for row in curves] == [row.split(",")[0] for row in history]
    assert saved["files"]["losses_plot"] == str(out / "losses.png") and "traversals" not in saved["files"]
    assert 'id="picture-losses_plot"' in (out / "report.html").read_text()
    assert np.load(out / "covariance.npy").shape == (4, 4)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 5 and "standardiser" in state


def test_no_mask_keeps_all_dimensions():
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--no-mask", "--json", *TINY)
    payload = json.loads(result.stdout)
    assert payload["m_active"] == 4 and payload["mask"] == [1.0] * 4 and payload["use_mask"] is False


def test_hdf5_input_with_and_without_key(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
    for extra in ([], ["--key", "X"]):
        result = run("estimate", str(path), "-m", "3", "--json", *extra, *TINY)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["source"].endswith(":X")


@pytest.fixture
def h5(tmp_path):
    def make(**datasets):
        path = tmp_path / "bad.h5"
        with h5py.File(path, "w") as f:
            for name, value in datasets.items():
                f[name] = value
        return str(path)

    return make


def test_missing_path():
    assert "no such file" in one_error_line(run("estimate", "does/not/exist.h5", *TINY))


def test_hdf5_without_the_key_names_the_keys(h5):
    line = one_error_line(run("estimate", h5(A=np.zeros((64, 3)), B=np.zeros((64, 3))), "--key", "X", *TINY))
    assert "'X'" in line and "A" in line and "B" in line


def test_non_numeric_array(h5):
    line = one_error_line(run("estimate", h5(X=np.array([b"a", b"b"] * 40).reshape(40, 2)), *TINY))
    assert "numeric" in line


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_array(h5, bad):
    x = np.zeros((64, 3))
    x[5, 1] = bad
    line = one_error_line(run("estimate", h5(X=x), *TINY))
    assert ("NaN" in line) if np.isnan(bad) else ("infinite" in line)


def test_fewer_samples_than_one_batch(h5):
    line = one_error_line(run("estimate", h5(X=np.zeros((10, 3))), "--width", "16", "--max-steps", "5"))
    assert "10 samples" in line and "64" in line


@pytest.mark.parametrize("capacity", ["0", "-3"])
def test_capacity_below_one(capacity):
    assert "capacity" in one_error_line(run("estimate", "synthetic:n=2", "--capacity", capacity, *TINY))


@pytest.mark.parametrize("spec", ["synthetc:n=2", "synthetic:m=3", "synthetic:n=two", "synthetic:"])
def test_unknown_or_bad_source_spec(spec):
    one_error_line(run("estimate", spec, *TINY))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    assert "no CUDA GPU" in one_error_line(run("estimate", "synthetic:n=2,samples=100", "--device", "cuda", *TINY))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run():
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--device", "cuda", "--json", *TINY)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["device"] == "cuda"


def test_help_teaches():
    result = run("estimate", "--help")
    assert result.exit_code == 0
    assert "synthetic:n=8" in result.stdout and "--capacity" in result.stdout


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("latentdim ")


def test_closing_pressure_only_with_latentdim_schedule():
    line = one_error_line(run("estimate", "synthetic:n=2", "--schedule", "reference", "--closing-pressure", "1", *TINY))
    assert "latentdim schedule" in line


def test_an_unknown_compile_backend_is_one_line():
    line = one_error_line(run("estimate", "synthetic:n=2", "--compile", "inductr", *TINY))
    assert "unknown compile backend 'inductr'" in line and "inductor" in line


def test_bfloat16_precision_runs_from_the_command_line():
    result = run("estimate", "synthetic:n=2", "--precision", "bfloat16", "--json", *TINY)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] > 0


def test_estimate_export_writes_a_generator_of_size_m_active(tmp_path):
    import onnx

    target = tmp_path / "model.onnx"
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--export", str(target), "--json", *TINY)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    graph = onnx.load(str(target)).graph
    assert graph.input[0].type.tensor_type.shape.dim[1].dim_value == payload["m_active"]


def test_export_to_a_missing_folder_fails_before_training(tmp_path):
    line = one_error_line(run("estimate", "synthetic:n=2", "--export", str(tmp_path / "no" / "m.onnx"), *TINY))
    assert "does not exist" in line


def test_same_seed_same_result():
    a = json.loads(run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--seed", "7", "--json", *TINY).stdout)
    b = json.loads(run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--seed", "7", "--json", *TINY).stdout)
    assert a["mask"] == b["mask"] and a["m_active"] == b["m_active"]


def test_error_lines_print_file_names_literally(tmp_path):
    """A name that looks like Rich markup or an emoji code is shown as it is, not rendered away."""
    name = tmp_path / "[bold]draft[/bold] :x:.h5"
    line = one_error_line(run("estimate", name, *TINY))
    assert "[bold]draft[/bold] :x:.h5" in line


def test_an_undefined_classical_estimator_does_not_stop_the_run(tmp_path):
    # A 10 x 10 integer grid: every point's two nearest neighbours are at distance 1, so every
    # ratio r2 / r1 is 1 and TwoNN is undefined; MLE's 20 neighbours are not all equidistant.
    path = tmp_path / "grid.h5"
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), axis=-1).reshape(-1, 2).astype("float32")
    with h5py.File(path, "w") as f:
        f["x"] = grid
    out = tmp_path / "run"
    result = run("estimate", path, "-m", "3", "--json", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["baselines"]["twonn"] is None
    assert payload["baselines"]["mle"] is not None and payload["baselines"]["lpca"] == 2.0
    assert set(payload["baseline_errors"]) == {"twonn"}
    assert "equidistant" in payload["baseline_errors"]["twonn"]
    assert json.loads((out / "result.json").read_text())["baseline_errors"] == payload["baseline_errors"]
    assert "<td>undefined (every point&#x27;s two nearest neighbours are equidistant)</td>" in (out / "report.html").read_text()
    table = run("estimate", path, "-m", "3", *TINY, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    row = next(ln for ln in table.stdout.splitlines() if "TwoNN" in ln)
    assert "undefined (every point's two nearest neighbours are equidistant)" in row
    assert "error:" not in table.stderr


def _help(*command):
    result = run(*command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # one line of words: the panel's borders out, a cell wrapped over lines joined again
    return " ".join(result.stdout.replace("│", " ").split())


def test_help_shows_every_default_and_no_value_on_flags():
    from latentdim.training import LOSS_BUDGET, NO_MASK_MAX_STEPS, TrainConfig

    text = _help("estimate")
    default, reference = TrainConfig(), TrainConfig.reference()
    for shown in (
        "[default: 64]",  # --capacity, --batch-size
        "[default: the file's only one]",
        "[default: auto]",
        "[default: from the data (gray when every pixel has R = G = B), or the preset's]",
        "[default: the preset's resolution]",
        "[default: 0]",
        f"[default: {default.max_steps}; {NO_MASK_MAX_STEPS} with --no-mask; {reference.max_steps} with --schedule reference]",
        "[default: latentdim]",
        f"[default: {default.closing_pressure:g}]",
        f"[default: {LOSS_BUDGET}]",
        "[default: the preset's]",
        "[default: none: nothing is written]",
        "[default: none]",
        "[default: $LATENTDIM_FID_WEIGHTS, else the torch hub cache, downloaded when online]",
        "[default: 10000]",
        "[default: 10m]",
    ):
        assert shown in text, shown
    assert "SPEC" not in text and "§" not in text
    assert "--strict Images:" in text and "--json Print" in text  # no type between a flag and its help
    assert "[default: h5]" in _help("sample")
    for command in ((), ("export",), ("sample",)):
        words = _help(*command)
        assert "<bool>" not in words and "SPEC" not in words


def test_out_holding_a_run_is_refused_unless_force_or_resume(tmp_path):
    out = tmp_path / "run"
    args = ["estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--out", out, "--no-baselines", *TINY]
    assert run(*args).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    line = one_error_line(run(*args, "--seed", "1"))
    assert f"--out {out} already holds a run" in line and "--force" in line and f"--resume {out}" in line
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "notes.txt"} == before  # nothing touched
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "result.json").read_text())["seed"] == 0
    forced = run(*args, "--seed", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "result.json").read_text())["seed"] == 1
    assert (out / "notes.txt").read_text() == "mine"  # only a run's own files are replaced
    other = tmp_path / "empty"  # a folder without a run's files is fine
    other.mkdir()
    assert run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--out", other, *TINY).exit_code == 0


def test_resume_continues_in_a_folder_that_holds_the_interrupted_run(tmp_path):
    import latentdim
    from latentdim.errors import TrainingInterrupted
    from latentdim.training import TrainConfig

    out = tmp_path / "run"
    calls = []
    with pytest.raises(TrainingInterrupted):
        latentdim.estimate("synthetic:n=2,d=8,samples=200", capacity=4, width=16, baselines=False, out=out,
                           config=TrainConfig(max_steps=5, batch_size=16),
                           should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert (out / "checkpoint.pt").exists() and not (out / "result.json").exists()
    args = ["estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--no-baselines", *TINY]
    assert "already holds a run (checkpoint.pt)" in one_error_line(run(*args, "--out", out))
    resumed = run(*args, "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "result.json").read_text())["steps"] == 5


def test_force_removes_an_earlier_runs_pictures_this_run_does_not_write(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "samples.png").write_bytes(b"an image run's samples")  # as an earlier image run left it
    args = ["estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", "--out", out, "--no-baselines", *TINY]
    assert "already holds a run (samples.png)" in one_error_line(run(*args))
    assert (out / "samples.png").exists()
    assert run(*args, "--force").exit_code == 0
    assert not (out / "samples.png").exists() and (out / "result.json").exists()


def test_an_unsettled_run_says_so_and_a_larger_max_steps_continues_it(tmp_path, monkeypatch):
    # Issue 21, item 2: 40 steps end inside the warm-up; table, JSON and API say so.
    out = tmp_path / "run"
    args = ["estimate", "synthetic:n=2,d=8,samples=400", "-m", "4", "--width", "16", "--batch-size", "16",
            "--no-baselines", "--out", out]
    monkeypatch.setattr("sys.argv", ["latentdim", *map(str, args), "--max-steps", "40"])  # what the shell passes
    table = run(*args, "--max-steps", "40", env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "not settled: stopped at the step limit (40 steps) in phase 'warmup'" in table.stdout
    assert (f"continue with: latentdim estimate synthetic:n=2,d=8,samples=400 -m 4 --width 16 --batch-size 16 "
            f"--no-baselines --out {out} --resume {out} --max-steps 80") in " ".join(table.stdout.split())
    saved = json.loads((out / "result.json").read_text())
    assert saved["settled"] is False and saved["phase"] == "warmup" and saved["stop_reason"] == "max_steps"
    again = run(*args, "--resume", out, "--max-steps", "40")
    assert "larger --max-steps" in one_error_line(again)
    resumed = run(*args, "--resume", out, "--max-steps", "80", "--json")
    assert resumed.exit_code == 0, resumed.output
    whole = run(*[a if a != out else tmp_path / "whole" for a in args], "--max-steps", "80", "--json")
    a, b = json.loads(resumed.stdout), json.loads(whole.stdout)
    assert a["steps"] == b["steps"] == 80
    assert a["mask"] == b["mask"] and a["reconstruction_error"] == b["reconstruction_error"]  # as if never stopped


def test_the_api_warns_when_the_run_did_not_settle():
    import latentdim
    from latentdim.result import EstimateWarning

    x = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    with pytest.warns(EstimateWarning, match="not settled: stopped at the step limit"):
        result = latentdim.estimate(x, 3, max_steps=5, batch_size=16, width=16, baselines=False)
    assert result.settled is False and result.steps == 5 and result.phase == "warmup"
    no_mask = latentdim.estimate(x, 3, max_steps=5, batch_size=16, width=16, baselines=False, use_mask=False)
    assert no_mask.settled is True  # the WAE baseline has no mask to settle


def test_piped_progress_is_plain_lines_and_the_summary_goes_to_stdout():
    # CliRunner's stderr is not a terminal, as a log file is not
    result = run("estimate", "synthetic:n=2,d=8,samples=200", "-m", "4", *TINY)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines and all(ln.startswith("[0:") for ln in lines), lines
    assert any("training: warm-up" in ln and "step 5" in ln for ln in lines)
    assert "\x1b" not in result.stderr and "active dimensions m_A" in result.stdout


def test_shell_completion_completes_options_and_their_choices():
    # Issue 21, item 9: Typer's completion (--install-completion puts this in the shell's rc file).
    import os
    import subprocess
    import sys

    def complete(*words):
        env = {**os.environ, "_LATENTDIM_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(["latentdim", *words]),
               "COMP_CWORD": str(len(words))}
        done = subprocess.run([sys.executable, "-m", "latentdim"], env=env, capture_output=True, text=True, timeout=60)
        return done.stdout.split()

    assert complete("estimate", "--pres") == ["--preset"]
    assert sorted(complete("estimate", "--pre")) == ["--precision", "--preset"]
    assert complete("estimate", "data.h5", "--precision", "") == ["float32", "bfloat16"]
    assert complete("estimate", "data.h5", "--preset", "") == ["auto", "mlp", "mnist", "fmnist", "cifar", "celeba", "conv"]
    assert "--install-completion" in run("--help").stdout
