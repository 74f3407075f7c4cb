"""Images end to end through latentdim.estimate and the CLI: preset choice, folder and HDF5 input,
the pictures in --out, and bad input (one line, exit code 2)."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

import latentdim
from latentdim.data.sources import plan_images
from latentdim.errors import LatentdimError
from latentdim.training import TrainConfig
from clihelpers import one_error_line, run

TINY = dict(width=8, baselines=False, config=TrainConfig(max_steps=4, warmup_steps=2, batch_size=8))


def make_folder(path, n=24, size=(28, 28), mode="L", seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    images = (rng.random((n, size[1], size[0], channels)) * 255).astype(np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0] if channels == 1 else image, mode=mode).save(path / f"{i:03d}.png")
    return images


@pytest.mark.parametrize(
    ("native", "channels", "size", "expected"),
    [
        ((1, 28, 28), None, None, ("mnist", (1, 28, 28))),
        ((3, 32, 32), None, None, ("cifar", (3, 32, 32))),
        ((3, 64, 64), None, None, ("celeba", (3, 64, 64))),
        ((3, 28, 28), None, None, ("conv", (3, 28, 28))),
        ((1, 40, 60), None, None, ("conv", (1, 40, 40))),
        ((3, 500, 375), None, None, ("conv", (3, 128, 128))),
        ((1, 27, 27), None, None, ("conv", (1, 16, 16))),
        ((3, 218, 178), None, 64, ("celeba", (3, 64, 64))),
        ((1, 100, 100), None, 28, ("mnist", (1, 28, 28))),
        ((3, 100, 100), 1, 28, ("mnist", (1, 28, 28))),
    ],
)
def test_auto_preset_choice(native, channels, size, expected):
    assert plan_images("auto", native, channels, size) == expected


def test_named_preset_converts_to_its_own_shape():
    assert plan_images("fmnist", (3, 64, 64), None, None) == ("fmnist", (1, 28, 28))
    assert plan_images("cifar", (1, 28, 28), None, None) == ("cifar", (3, 32, 32))
    assert plan_images("conv", (1, 40, 40), None, 32) == ("conv", (1, 32, 32))
    with pytest.raises(LatentdimError, match="for vectors"):
        plan_images("mlp", (1, 28, 28), None, None)


def test_gray_pictures_saved_as_rgb_get_the_gray_preset(tmp_path):
    make_folder(tmp_path / "imgs", n=16)
    for path in (tmp_path / "imgs").iterdir():
        Image.open(path).convert("RGB").save(path)
    result = latentdim.estimate(tmp_path / "imgs", capacity=3, **TINY)
    assert (result.preset, result.data_shape) == ("mnist", [1, 28, 28])
    forced = latentdim.estimate(tmp_path / "imgs", capacity=3, channels=3, **TINY)
    assert (forced.preset, forced.data_shape) == ("conv", [3, 28, 28])


def test_a_folder_headers_are_read_once(tmp_path, monkeypatch):
    from latentdim.data import images

    make_folder(tmp_path / "imgs", n=16)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    scans = []
    real = images._scan_folder
    monkeypatch.setattr(images, "_scan_folder", lambda folder: scans.append(folder) or real(folder))
    assert latentdim.estimate(tmp_path / "imgs", capacity=3, **TINY).skipped_files == 1
    assert len(scans) == 1
    with pytest.raises(LatentdimError, match="broken.png"):
        latentdim.estimate(tmp_path / "imgs", capacity=3, strict=True, **TINY)
    assert len(scans) == 2


def test_folder_run_writes_pictures(tmp_path):
    make_folder(tmp_path / "imgs", n=24, size=(20, 20), mode="RGB")
    out = tmp_path / "run"
    result = latentdim.estimate(tmp_path / "imgs", capacity=4, out=out, **TINY)
    assert (result.preset, result.data_shape) == ("conv", [3, 20, 20])
    for name in ("samples", "reconstructions", "mask_history_plot", "covariance_heatmap", "result", "checkpoint"):
        assert name in result.files
    with Image.open(out / "samples.png") as grid:  # 24 < 64 samples evaluated: a 5x5 grid, 2 px white gaps, 4x
        assert grid.format == "PNG" and grid.mode == "RGB" and grid.size == (4 * (5 * 20 + 6 * 2),) * 2
    with Image.open(out / "reconstructions.png") as pairs:  # 24 pairs, 10 a row: 3 rows of real over 3 of recon
        # scaled 4x (20 px tiles shown at least 64 px high), with a label margin on the left
        assert pairs.size[1] == 4 * (6 * 20 + 7 * 2) and pairs.size[0] > 4 * (10 * 20 + 11 * 2)
    dims = [j for j in result.active]
    with Image.open(out / "traversals.png") as walk:  # one row per active dim (4 at most), 9 values, labelled
        assert walk.size[0] > 4 * (9 * 20 + 10 * 2) and walk.size[1] > 4 * (len(dims) * 20 + (len(dims) + 1) * 2)
    assert (out / "losses.png").exists() and (out / "losses.csv").read_text().startswith("step,phase,reconstruction,wasserstein")
    for name, inches in (("mask_history.png", (6.0, 4.0)), ("covariance.png", (5.6, 4.6))):
        with Image.open(out / name) as picture:  # the figure's size in inches at 110 dpi
            assert picture.format == "PNG" and picture.size == tuple(round(110 * v) for v in inches)
    saved = json.loads((out / "result.json").read_text())
    assert saved["files"]["samples"] == str(out / "samples.png")
    assert saved["skipped_files"] == 0


def test_folder_and_hdf5_give_the_same_run(tmp_path):
    images = make_folder(tmp_path / "imgs", n=24)
    with h5py.File(tmp_path / "imgs.h5", "w") as f:
        f["x"] = images[..., 0]  # (N, H, W) uint8
    a = latentdim.estimate(tmp_path / "imgs", capacity=4, **TINY)
    b = latentdim.estimate(tmp_path / "imgs.h5", capacity=4, **TINY)
    assert a.preset == b.preset == "mnist"
    assert a.mask == b.mask and a.m_active == b.m_active
    assert a.reconstruction_error == b.reconstruction_error


def test_image_run_exports_a_sigmoid_generator(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    make_folder(tmp_path / "imgs", n=16)
    latentdim.estimate(tmp_path / "imgs", capacity=3, export=tmp_path / "g.onnx", **TINY)
    session = ort.InferenceSession(str(tmp_path / "g.onnx"))
    k = session.get_inputs()[0].shape[1]
    out = session.run(None, {session.get_inputs()[0].name: np.random.default_rng(0).normal(size=(4, k)).astype(np.float32)})[0]
    assert out.shape == (4, 1, 28, 28) and out.min() >= 0 and out.max() <= 1


def test_cli_counts_skipped_files_and_strict_refuses_them(tmp_path):
    make_folder(tmp_path / "imgs", n=16)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    args = ["estimate", tmp_path / "imgs", "-m", "3", "--width", "8", "--max-steps", "3", "--batch-size", "8", "--no-baselines"]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["skipped_files"] == 1
    assert len(out["skipped_examples"]) == 1 and out["skipped_examples"][0].startswith("broken.png: ")
    table = run(*args)
    assert "1 unreadable image files skipped" in table.stdout and "broken.png" in table.stdout
    line = one_error_line(run(*args, "--strict"))
    assert "broken.png" in line


def test_cli_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    make_folder(tmp_path / "imgs", n=16)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # every 28x28 image is now a "bomb"
    line = one_error_line(run("estimate", tmp_path / "imgs", "-m", "3", "--width", "8", "--max-steps", "2", "--no-baselines"))
    assert "decompression" in line


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "holds no files"),
        ("no_images", "no image files"),
        ("unreadable", "could be read"),
        ("rank5", "(N, H, W)"),
    ],
)
def test_cli_bad_image_input_is_one_line(tmp_path, setup, message):
    source = tmp_path / "src"
    if setup == "empty":
        source.mkdir()
    elif setup == "no_images":
        source.mkdir()
        (source / "notes.txt").write_text("hello")
    elif setup == "unreadable":
        source.mkdir()
        for i in range(3):
            (source / f"{i}.jpg").write_bytes(b"not a jpeg")
    else:
        source = tmp_path / "bad.h5"
        with h5py.File(source, "w") as f:
            f["x"] = np.zeros((4, 2, 8, 8, 3), dtype=np.uint8)
    line = one_error_line(run("estimate", source, "--no-baselines", "--out", tmp_path / "run"))
    assert message in line
    assert not (tmp_path / "run").exists()  # bad input leaves no empty output folder behind


def test_a_size_the_preset_cannot_take_fails_before_decoding(tmp_path):
    make_folder(tmp_path / "imgs", n=16)
    decoded = []
    for preset, size, message in [("mnist", 32, "needs 28x28 images"), ("conv", 600, "between 8 and 512")]:
        with pytest.raises(LatentdimError, match=message):
            latentdim.estimate(tmp_path / "imgs", 3, preset=preset, image_size=size, out=tmp_path / "run",
                               on_load=lambda done, total: decoded.append(done), **TINY)
    assert decoded == [] and not (tmp_path / "run").exists()


def test_cli_image_options_on_vectors_are_refused(tmp_path):
    line = one_error_line(run("estimate", "synthetic:n=2,samples=100", "--image-size", "28"))
    assert "apply to images" in line
    line = one_error_line(run("estimate", "synthetic:n=2,samples=100", "--preset", "fmnist"))
    assert "needs images" in line
    make_folder(tmp_path / "imgs", n=16)
    line = one_error_line(run("estimate", tmp_path / "imgs", "--channels", "2"))
    assert "channels (--channels) must be 1 or 3" in line
    line = one_error_line(run("estimate", tmp_path / "imgs", "--preset", "mlp"))
    assert "for vectors" in line


def test_fid_is_null_with_a_reason_when_the_weights_are_missing(tmp_path, monkeypatch):
    from latentdim.metrics import fid as fid_mod

    monkeypatch.setattr(fid_mod, "online", lambda *a, **k: False)
    monkeypatch.delenv(fid_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(fid_mod, "_cache_path", lambda: tmp_path / "no-cache" / fid_mod.WEIGHTS_FILE)
    make_folder(tmp_path / "imgs", n=16)
    result = run("estimate", tmp_path / "imgs", "-m", "3", "--width", "8", "--max-steps", "2", "--batch-size", "8",
                 "--no-baselines", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["fid"] is None and payload["kid_mean"] is None and payload["fid_samples"] == 0
    assert "--fid-weights" in payload["fid_reason"] and fid_mod.WEIGHTS_FILE in payload["fid_reason"]
    table = run("estimate", tmp_path / "imgs", "-m", "3", "--width", "8", "--max-steps", "2", "--batch-size", "8",
                "--no-baselines")
    assert "not computed" in table.stdout


def test_a_missing_fid_weights_path_fails_before_training(tmp_path):
    make_folder(tmp_path / "imgs", n=16)
    line = one_error_line(run("estimate", tmp_path / "imgs", "--fid-weights", tmp_path / "nope.pth"))
    assert "nope.pth" in line
    line = one_error_line(run("estimate", tmp_path / "imgs", "--fid-samples", "1"))
    assert "--fid-samples" in line


def test_vector_runs_say_fid_is_for_images():
    result = latentdim.estimate("synthetic:n=2,d=8,samples=200", capacity=2, width=8, baselines=False,
                                config=TrainConfig(max_steps=2, batch_size=8))
    assert result.fid is None and "images" in result.fid_reason


def test_fid_end_to_end_with_a_stand_in_weights_file(tmp_path, monkeypatch, stand_in):
    # The stand-in has the real file's architecture and random values (tests/test_fid.py); the
    # code that loads and runs it is the code that would load the real weights.
    from latentdim.metrics import fid as fid_mod

    monkeypatch.setattr(fid_mod, "online", lambda *a, **k: False)
    weights = stand_in
    make_folder(tmp_path / "imgs", n=16)
    monkeypatch.setenv(fid_mod.ENV_VAR, str(weights))
    result = latentdim.estimate(tmp_path / "imgs", capacity=3, fid_samples=6, out=tmp_path / "run", **TINY)
    assert result.fid is not None and result.fid > 0 and result.fid_reason is None
    assert result.fid_samples == 6 and result.kid_mean is not None
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["fid"] == result.fid
    assert f"{result.fid:.2f}" in (tmp_path / "run" / "report.html").read_text()


def test_images_and_vectors_close_by_the_same_rule_with_their_own_losses(tmp_path):
    """Unset TrainConfig fields are chosen from the data; the checkpoint records what was used."""
    from latentdim.checkpoint import read_checkpoint

    make_folder(tmp_path / "imgs", n=16)
    latentdim.estimate(tmp_path / "imgs", capacity=3, out=tmp_path / "img", **TINY)
    vectors = np.random.default_rng(0).normal(size=(32, 5))
    latentdim.estimate(vectors, capacity=3, out=tmp_path / "vec", **TINY)
    picked = {}
    for name in ("img", "vec"):
        c = read_checkpoint(tmp_path / name / "checkpoint.pt")["config"]
        picked[name] = (c["reconstruction"], c["lr_mask"], c["loss_budget"], c["warmup_plateau"], c["closing"],
                        c["ae_optimiser"])
    assert picked == {"img": ("bce", 1e-3, 0.02, True, "eliminate", "rmsprop"),
                      "vec": ("mse", 4e-3, 0.02, True, "eliminate", "adam")}
    explicit = TrainConfig(max_steps=4, warmup_steps=2, batch_size=8, lr_mask=2e-3, loss_budget=0.05)
    latentdim.estimate(tmp_path / "imgs", capacity=3, out=tmp_path / "set", **{**TINY, "config": explicit})
    c = read_checkpoint(tmp_path / "set" / "checkpoint.pt")["config"]
    assert (c["lr_mask"], c["loss_budget"], c["closing"]) == (2e-3, 0.05, "eliminate")
    no_budget = TrainConfig(max_steps=4, warmup_steps=2, batch_size=8, loss_budget=0.0)
    latentdim.estimate(tmp_path / "imgs", capacity=3, out=tmp_path / "off", **{**TINY, "config": no_budget})
    assert read_checkpoint(tmp_path / "off" / "checkpoint.pt")["config"]["closing"] == "pressure"  # needs a budget


def test_cli_table_shows_the_closing_rounds_and_the_gap(tmp_path):
    from dataclasses import replace

    from rich.console import Console

    from latentdim.cli import result_table

    make_folder(tmp_path / "imgs", n=16)
    result = latentdim.estimate(tmp_path / "imgs", capacity=3, **TINY)
    rounds = [{"step": 5, "open": 3, "k": 1, "dims": [0], "error": 1.2, "limit": 1.0, "allowance": 0.5, "kept": False}]

    def shown(r):
        console = Console(width=200, record=True)
        console.print(result_table(r))
        return console.export_text()

    assert "gap below m_A" not in shown(result)
    text = shown(replace(result, closing_rounds=rounds, closing_margin=0.4))
    assert "closing rounds" in text and "1 (1 undone: over the loss budget)" in text
    assert "soft: one dimension fewer went only 0.40 of an allowance" in text


def test_data_larger_than_the_free_gpu_memory_is_one_line(tmp_path, monkeypatch):
    import torch

    from latentdim import api

    make_folder(tmp_path / "imgs", n=16)  # 16 x 28 x 28 bytes = 12,544
    monkeypatch.setattr(api, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (12_543, 10**9))
    with pytest.raises(LatentdimError, match="more than the GPU's 0.0 GiB free; use --device cpu"):
        latentdim.estimate(tmp_path / "imgs", capacity=3, out=tmp_path / "run", **TINY)
    assert not (tmp_path / "run").exists()
