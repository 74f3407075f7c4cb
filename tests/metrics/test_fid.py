"""Tests for latentdim.metrics.fid: FID / KID through torch-fidelity with stand-in Inception weights.

The real FID Inception weights (torch-fidelity's converted TF 2015-12-05 graph) cannot be
downloaded here. ``make_stand_in_weights`` writes a file with the same layout as the real one
(a plain dict, the same 472 keys and shapes, float32, no ``num_batches_tracked``, as
toshas/torch-fidelity utils/util_convert_inception_weights.py saves it) but random values, and
the code under test loads it exactly as it would load the real file: by path, through our
weights_only check and then torch-fidelity's own ``FeatureExtractorInceptionV3``.

The network resizes every image to 299 x 299, so each image costs the same (~0.5 s on one CPU
thread) whatever its size: the sets here are 6 images of 16 x 16, and the three FID runs share
one module fixture (~20-40 s, so the tests on it are marked slow; the download test is a fast
end-to-end run with 2 images per set). No test touches the network: an autouse fixture points torch hub at a temp
folder, clears $LATENTDIM_FID_WEIGHTS and makes the "online?" probe answer False.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from latentdim.errors import LatentdimError
from latentdim.metrics import frechet_distance, gaussian_stats
from latentdim.metrics import fid as fid_mod
from latentdim.metrics.fid import ENV_VAR, WEIGHTS_FILE, WEIGHTS_URL, FidResult, compute_fid, find_weights

fe_mod = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
_REAL_ONLINE = fid_mod.online  # before any fixture replaces it

N = 6  # images per set; a rank-5 covariance is plenty for the identities tested here
SIZE = 16




@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Empty hub cache, no env var, and a probe that says offline: no test can download."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(fid_mod, "online", lambda *a, **k: False)
    return hub


# --- the three FID runs (module fixture: ~36 images through Inception, computed once) ---------


def _images(seed: int, n: int, c: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, c, SIZE, SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def runs(stand_in):
    weights = stand_in
    gray = _images(1, N, 1)  # generated: grayscale floats
    rgb = _images(2, N + 1, 3)  # real: RGB, one more image than generated (cut to N)

    recorded = []
    real_features = fid_mod._features

    def spy(extractor, images, batch_size, device, on_batch=None):
        out = real_features(extractor, images, batch_size, device, on_batch)
        recorded.append((extractor, images.copy(), out.clone()))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fid_mod, "online", lambda *a, **k: False)
        mp.setattr(fid_mod, "_features", spy)
        self_run = compute_fid(gray, gray, weights=weights)
        self_features = recorded[:]
        recorded.clear()
        # batch_size 4: two batches (4 + 2) per set.
        progress = []
        gray_run = compute_fid(gray, rgb, weights=weights, batch_size=4, on_progress=lambda *a: progress.append(a))
        gray_features = recorded[:]
        recorded.clear()
        rgb_run = compute_fid(np.repeat(gray, 3, axis=1), rgb, weights=weights, batch_size=4)
    return {
        "weights": weights,
        "gray": gray,
        "rgb": rgb,
        "self": self_run,
        "self_features": self_features,
        "gray_run": gray_run,
        "progress": progress,
        "gray_features": gray_features,
        "rgb_run": rgb_run,
    }


@pytest.mark.slow
def test_fid_of_a_set_against_itself_is_zero_to_rounding(runs):
    r = runs["self"]
    assert r.reason is None and r.samples == N and r.weights == str(runs["weights"])
    (_, _, f1), (_, _, f2) = runs["self_features"]
    assert torch.equal(f1, f2)  # same images, same batches: bit-identical features
    # Both sides have the same covariance S, so FID = 2 tr S - 2 sum sqrt(eig(S S)). S has rank
    # N - 1 = 5 in 2048 dimensions; numpy's eigvals returns the ~2043 zero eigenvalues of S S as
    # rounding noise of size ~eps * |S|^2, whose square roots (the positive ones) add up to at most
    # ~2048 * sqrt(eps) * |S| ~ 3e-5 tr S. Hence |FID| <= 1e-4 tr S; it is ~1e-6 tr S here, and
    # far below the 1e-3 one would allow on real Inception features (tr S there is in the hundreds).
    trace = np.trace(gaussian_stats(f1.numpy())[1])
    assert trace > 0
    assert abs(r.fid) <= 1e-4 * trace
    assert abs(r.fid) < 1e-3


@pytest.mark.slow
def test_progress_counts_the_images_of_both_sets(runs):
    assert runs["progress"] == [(4, 12), (6, 12), (10, 12), (12, 12)]


def _gray_run_features(runs):
    """The features compute_fid extracted in the gray-vs-RGB run, after checking what went in."""
    (ext_gen, img_gen, f_gen), (ext_real, img_real, f_real) = runs["gray_features"]
    # What reached torch-fidelity's extractor: its own class, uint8 RGB, gray repeated, rounded.
    assert isinstance(ext_gen, fe_mod.FeatureExtractorInceptionV3) and ext_gen is ext_real
    assert img_gen.dtype == np.uint8 and img_gen.shape == (N, 3, SIZE, SIZE)
    expected = np.rint(runs["gray"] * 255.0).astype(np.uint8).repeat(3, axis=1)
    np.testing.assert_array_equal(img_gen, expected)
    np.testing.assert_array_equal(img_real, np.rint(runs["rgb"][:N] * 255.0).astype(np.uint8))
    assert f_gen.shape == (N, 2048) and f_real.shape == (N, 2048)
    return f_gen.numpy().astype(np.float64), f_real.numpy().astype(np.float64)


def _assert_matches_closed_form(fid: float, a: np.ndarray, b: np.ndarray) -> None:
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    ref = frechet_distance(mu1, s1, mu2, s2)
    assert ref > 0 and fid > 0
    # torch-fidelity takes tr sqrt(S1 S2) from numpy's eigvals of the product, ours from eigh of
    # S1^1/2 S2 S1^1/2: they agree up to the rounding of the null-space eigenvalues described
    # above: ~2e-7 relative here; allowed 1e-6 of (FID + both traces).
    assert abs(fid - ref) <= 1e-6 * (abs(ref) + np.trace(s1) + np.trace(s2))


@pytest.mark.slow
def test_fid_of_different_sets_equals_frechet_closed_form_on_the_features(runs):
    """compute_fid's FID == latentdim.metrics.frechet_distance on the features it extracted.

    The 2N = 12 feature vectors span at most 11 dimensions of the 2048, and the Frechet distance
    is invariant under translation and orthogonal maps (mu -> Q^T mu, S -> Q^T S Q), so
    coordinates in an orthonormal basis Q of the span of the pooled, centred features give
    exactly the 2048-d value, and the eigendecompositions run on 12 x 12 instead of 2048 x 2048
    (that literal version is the next test).
    """
    r = runs["gray_run"]
    assert r.reason is None and r.samples == N  # the real set's extra image is dropped
    f_gen, f_real = _gray_run_features(runs)
    pooled = np.concatenate([f_gen, f_real])
    centre = pooled.mean(axis=0)
    q, _ = np.linalg.qr((pooled - centre).T)  # (2048, 12), orthonormal columns
    _assert_matches_closed_form(r.fid, (f_gen - centre) @ q, (f_real - centre) @ q)


@pytest.mark.slow
def test_fid_equals_frechet_closed_form_in_all_2048_dimensions(runs):
    """The same identity without the projection: the Frechet distance in all 2048 dimensions."""
    f_gen, f_real = _gray_run_features(runs)
    _assert_matches_closed_form(runs["gray_run"].fid, f_gen, f_real)


@pytest.mark.slow
def test_grayscale_gives_the_same_fid_as_the_images_repeated_to_rgb(runs):
    gray, rgb = runs["gray_run"], runs["rgb_run"]
    assert gray.fid == rgb.fid
    assert gray.kid_mean == rgb.kid_mean and gray.kid_std == rgb.kid_std


@pytest.mark.slow
def test_kid_is_present_and_finite(runs):
    for key in ("self", "gray_run"):
        r = runs[key]
        assert r.kid_mean is not None and r.kid_std is not None
        assert np.isfinite(r.kid_mean) and np.isfinite(r.kid_std) and r.kid_std >= 0
    # Different sets are further apart than a set and itself. (The unbiased MMD of a set against
    # itself is slightly negative: it drops the diagonal of K_XX but not of K_XY.)
    assert runs["gray_run"].kid_mean > runs["self"].kid_mean


# --- weights lookup -----------------------------------------------------------------------------


def test_weights_constants_match_torch_fidelity():
    assert WEIGHTS_URL == fe_mod.URL_INCEPTION_V3
    assert WEIGHTS_FILE == fe_mod.URL_INCEPTION_V3.rsplit("/", 1)[1]


def test_find_weights_order_explicit_env_cache_none(tmp_path, monkeypatch, offline):
    assert find_weights() is None

    cached = offline / "checkpoints" / WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert find_weights() == cached

    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv(ENV_VAR, str(env_file))
    assert find_weights() == env_file

    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert find_weights(explicit) == explicit
    assert find_weights(str(explicit)) == explicit

    monkeypatch.setenv(ENV_VAR, "")  # empty counts as unset
    assert find_weights() == cached


def test_find_weights_explicit_missing_path_raises_one_line(tmp_path, offline):
    cached = offline / "checkpoints" / WEIGHTS_FILE  # a cached file does not rescue a bad path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    with pytest.raises(LatentdimError) as info:
        find_weights(tmp_path / "nope.pth")
    msg = str(info.value)
    assert "\n" not in msg and "nope.pth" in msg and "does not exist" in msg
    with pytest.raises(LatentdimError, match="directory"):
        find_weights(tmp_path)


def test_find_weights_env_missing_path_raises(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.pth"))
    with pytest.raises(LatentdimError, match=r"gone\.pth.*LATENTDIM_FID_WEIGHTS"):
        find_weights()


def test_compute_fid_with_explicit_missing_path_raises(tmp_path):
    with pytest.raises(LatentdimError, match="does not exist"):
        compute_fid(_images(1, 2, 3), _images(2, 2, 3), weights=tmp_path / "nope.pth")


# --- no weights ---------------------------------------------------------------------------------


def _check_missing(r: FidResult, n: int) -> None:
    assert r.fid is None and r.kid_mean is None and r.kid_std is None and r.weights is None
    assert r.samples == n
    assert "\n" not in r.reason
    for part in ("--fid-weights", ENV_VAR, WEIGHTS_FILE, WEIGHTS_URL, "checkpoints"):
        assert part in r.reason


def test_no_weights_and_no_download_gives_none_with_reason(monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("must not probe the network when allow_download=False")

    monkeypatch.setattr(fid_mod, "online", forbidden)
    r = compute_fid(_images(1, 3, 1), _images(2, 4, 3), allow_download=False)
    _check_missing(r, 3)


def test_no_weights_offline_gives_none_with_reason():
    _check_missing(compute_fid(_images(1, 3, 3), _images(2, 3, 3)), 3)


def test_failed_download_gives_none_with_reason(monkeypatch):
    asked = []

    def fail(url, *a, **k):
        asked.append(url)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(fid_mod, "online", lambda *a, **k: True)
    monkeypatch.setattr(fe_mod, "load_state_dict_from_url", fail)
    r = compute_fid(_images(1, 3, 3), _images(2, 3, 3))
    assert asked == [WEIGHTS_URL]
    _check_missing(r, 3)
    assert "download" in r.reason and "no route to host" in r.reason


def test_download_lands_in_the_hub_cache_and_is_used(stand_in, monkeypatch, offline, capfd):
    """torch-fidelity's download (faked: a copy of the stand-in) goes to the hub cache we report.

    Also the fast end-to-end run: 2 images per side through the stand-in network, silently.
    """
    asked = []

    def fake_download(url, *a, **k):
        asked.append((url, k.get("progress")))
        target = offline / "checkpoints" / url.rsplit("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stand_in.read_bytes())
        return torch.load(target, weights_only=True)

    monkeypatch.setattr(fid_mod, "online", lambda *a, **k: True)
    monkeypatch.setattr(fe_mod, "load_state_dict_from_url", fake_download)
    r = compute_fid(_images(1, 2, 3), _images(2, 2, 3))
    assert asked == [(WEIGHTS_URL, False)]  # no progress bar
    assert r.weights == str(offline / "checkpoints" / WEIGHTS_FILE) and r.reason is None
    assert np.isfinite(r.fid) and r.samples == 2
    assert find_weights() == offline / "checkpoints" / WEIGHTS_FILE
    assert capfd.readouterr() == ("", "")  # no prints, no progress bars


def test_online_probe_is_false_for_a_closed_port():
    # The real probe (the autouse fixture replaces it in the module): port 9 on localhost refuses
    # at once; nothing leaves the machine.
    assert _REAL_ONLINE("https://127.0.0.1:9/x", timeout=0.5) is False


# --- bad weights files --------------------------------------------------------------------------


def _write_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a torch file\n" * 10)


def _write_truncated(path: Path, stand_in: Path) -> None:
    with open(stand_in, "rb") as f:
        path.write_bytes(f.read(1 << 20))


def _write_list(path: Path) -> None:
    torch.save([1, 2, 3], path)


def _write_wrong_architecture(path: Path) -> None:
    # A ResNet-ish fragment: one key with a shape the network does not have, others it lacks.
    torch.save({"fc.weight": torch.zeros(10, 2048), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}, path)


@pytest.mark.parametrize(
    ("writer", "words"),
    [
        (_write_garbage, "do not load as a state dict"),
        ("truncated", "do not load as a state dict"),
        (_write_list, "not a state dict of tensors"),
        (_write_wrong_architecture, "do not fit the FID Inception network"),
    ],
)
def test_bad_weights_file_raises_one_line(tmp_path, stand_in, writer, words):
    bad = tmp_path / "bad.pth"
    if writer == "truncated":
        _write_truncated(bad, stand_in)
    else:
        writer(bad)
    with pytest.raises(LatentdimError) as info:
        compute_fid(_images(1, 2, 3), _images(2, 2, 3), weights=bad)
    msg = str(info.value)
    assert "\n" not in msg and words in msg and "bad.pth" in msg and WEIGHTS_FILE in msg


def test_wrong_architecture_message_counts_keys(tmp_path):
    bad = tmp_path / "bad.pth"
    _write_wrong_architecture(bad)
    with pytest.raises(LatentdimError) as info:
        compute_fid(_images(1, 2, 3), _images(2, 2, 3), weights=bad)
    msg = str(info.value)
    assert "471 missing" in msg and "1 unexpected" in msg and "1 wrong shape (e.g. fc.weight)" in msg


# --- image conversion and input checks (no network runs) ---------------------------------------


def test_to_uint8_rgb_rounds_and_repeats_gray():
    levels = np.arange(256, dtype=np.float64).reshape(1, 1, 16, 16) / 255.0
    levels = np.concatenate([levels, levels[:, :, ::-1]])  # N = 2
    out = fid_mod._to_uint8_rgb(levels.astype(np.float32), "x")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(out[0, 0].ravel(), np.arange(256))  # k / 255 -> k exactly
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_array_equal(out[:, 0], out[:, 2])
    u8 = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(fid_mod._to_uint8_rgb(u8, "x"), u8)
    # Just outside [0, 1] (decoder rounding) is clipped; in between, nearest level.
    edge = np.array([-1e-4, 1 + 1e-4, 1.6 / 255, 1.4 / 255]).reshape(2, 1, 1, 2)
    np.testing.assert_array_equal(fid_mod._to_uint8_rgb(edge, "x")[:, 0].ravel(), [0, 255, 2, 1])


@pytest.mark.parametrize(
    ("images", "words"),
    [
        (np.zeros((4, 3, 8)), "(N, C, H, W)"),
        (np.zeros((4, 2, 8, 8)), "C 1 or 3"),
        (np.zeros((1, 3, 8, 8)), "at least 2"),
        (np.full((2, 3, 8, 8), np.nan), "NaN"),
        (np.full((2, 3, 8, 8), 255.0), "[0, 1]"),
        (np.full((2, 3, 8, 8), 300, dtype=np.int32), "0..255"),
        (np.zeros((2, 3, 8, 8), dtype=np.complex64), "dtype"),
    ],
)
def test_bad_images_raise_before_any_weights(images, words, stand_in):
    with pytest.raises(LatentdimError) as info:
        compute_fid(images, _images(0, 2, 3), weights=stand_in)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_importing_latentdim_metrics_does_not_import_torch_fidelity():
    code = "import sys, latentdim.metrics, latentdim.metrics.fid; print('torch_fidelity' in sys.modules)"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
