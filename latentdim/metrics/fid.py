"""FID and KID of image sets with the standard FID Inception weights, through torch-fidelity.

SPEC §7 measures images by the Frechet distance between Gaussian fits of 2048-d Inception pool
features. This module is glue only: torch-fidelity's ``FeatureExtractorInceptionV3`` (the
"inception-v3-compat" network, the TensorFlow 2015-12-05 graph that pytorch-fid and the original
TTUR code use) gives the features, and its own ``fid_featuresdict_to_statistics``,
``fid_statistics_to_metric`` and ``kid_featuresdict_to_metric`` give the numbers. What is ours:
finding the weights file, turning our (N, C, H, W) float images into the uint8 RGB the extractor
asserts, batching, and one-line errors.

torch-fidelity is imported inside the functions, so ``import latentdim.metrics`` stays light.
"""

from __future__ import annotations

import io
import functools
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from latentdim.errors import LatentdimError
from latentdim.pixels import to_levels

#: torch-fidelity's file name for the converted TF Inception weights (URL_INCEPTION_V3's basename).
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
#: Where torch-fidelity downloads it from (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3).
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
#: Environment variable naming the weights file.
ENV_VAR = "LATENTDIM_FID_WEIGHTS"

# torch-fidelity's registry name of the extractor and the feature FID/KID use.
_EXTRACTOR = "inception-v3-compat"
_FEATURE = "2048"
# Seconds for the "is the download host reachable" probe.
_ONLINE_TIMEOUT_S = 2.0


@dataclass
class FidResult:
    """FID (and KID) of a generated set against a real one.

    Attributes:
        fid: Frechet Inception Distance, or None when it could not be computed (see ``reason``).
        kid_mean: Kernel Inception Distance, mean over torch-fidelity's 100 subsets, or None.
        kid_std: its standard deviation over the subsets, or None.
        samples: samples per side actually used (both sets cut to the smaller size).
        reason: one line saying why ``fid`` is None (e.g. weights missing), else None.
        weights: path of the Inception weights used, or None.
    """

    fid: float | None
    kid_mean: float | None
    kid_std: float | None
    samples: int
    reason: str | None
    weights: str | None


def _cache_path() -> Path:
    """Where torch hub (and so torch-fidelity's download) keeps the weights file."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def _existing_file(path: str | os.PathLike, origin: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise LatentdimError(f"FID Inception weights {p} ({origin}) {what}; give the path of {WEIGHTS_FILE}")
    return p


def find_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The FID Inception weights file to use, or None when there is none.

    Order: ``path`` if given > ``$LATENTDIM_FID_WEIGHTS`` if set and non-empty > the torch hub
    cache (``torch.hub.get_dir()/checkpoints/WEIGHTS_FILE``, where torch-fidelity downloads it)
    > None. Only existence is checked here; :func:`compute_fid` checks the contents.

    Raises:
        LatentdimError: ``path`` or the environment variable names a file that does not exist.
    """
    if path is not None and str(path) != "":
        return _existing_file(path, "--fid-weights")
    env = os.environ.get(ENV_VAR, "")
    if env:
        return _existing_file(env, f"${ENV_VAR}")
    cached = _cache_path()
    if cached.is_file():
        return cached
    return None


def missing_weights_reason() -> str:
    """One line: which file is missing, where it was looked for, and how to supply it."""
    env = os.environ.get(ENV_VAR, "")
    env_note = f"${ENV_VAR}={env}" if env else f"${ENV_VAR} (unset)"
    return (
        f"FID Inception weights {WEIGHTS_FILE} not found (looked at {env_note} and {_cache_path()}); "
        f"pass --fid-weights PATH or set {ENV_VAR}, or download it from {WEIGHTS_URL}"
    )


@functools.lru_cache(maxsize=None)
def online(url: str = WEIGHTS_URL, timeout: float = _ONLINE_TIMEOUT_S) -> bool:
    """Whether the download host accepts a TCP connection within ``timeout`` seconds (asked once
    per process: an offline machine should not wait at every run)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _to_uint8_rgb(images: np.ndarray, name: str) -> np.ndarray:
    """(N, C, H, W) float in [0, 1] or uint8, C in (1, 3) -> uint8 (N, 3, H, W), gray repeated.

    Floats are rounded to the nearest of the 256 levels (as latentdim.export.Uint8RGB and PIL do),
    so ``x = k / 255`` maps back to ``k`` exactly.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise LatentdimError(f"{name} images must be (N, C, H, W) with C 1 or 3, got shape {x.shape}")
    if x.shape[0] < 2:
        raise LatentdimError(f"FID needs at least 2 {name} images, got {x.shape[0]}")
    if x.dtype == np.uint8:
        out = x
    elif np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise LatentdimError(f"{name} images of integer type must lie in 0..255, got {lo}..{hi}")
        out = x.astype(np.uint8)
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise LatentdimError(f"{name} images contain NaN or inf")
        lo, hi = float(x.min()), float(x.max())
        # A little slack for decoders whose [0, 1] output rounds just outside; more is a unit error.
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise LatentdimError(f"{name} images must be float in [0, 1] (or uint8), got range [{lo:.4g}, {hi:.4g}]")
        out = to_levels(x)
    else:
        raise LatentdimError(f"{name} images must be float in [0, 1] or uint8, got dtype {x.dtype}")
    if out.shape[1] == 1:
        out = np.repeat(out, 3, axis=1)
    return np.ascontiguousarray(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _check_state_dict(path: Path) -> None:
    """Loads ``path`` with ``weights_only=True`` and compares its keys and shapes with the network's.

    torch-fidelity then loads the file again with ``weights_only=False`` (full unpickling); this
    check first refuses anything that is not a plain dict of tensors, and words a mismatch in one
    line instead of load_state_dict's multi-line report.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file, or pickled objects
        raise LatentdimError(
            f"FID Inception weights {path} do not load as a state dict ({_first_line(exc)}); "
            f"expected torch-fidelity's {WEIGHTS_FILE}"
        ) from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise LatentdimError(
            f"FID Inception weights {path} are not a state dict of tensors; expected torch-fidelity's {WEIGHTS_FILE}"
        )
    expected = _expected_shapes()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise LatentdimError(
            f"FID Inception weights {path} do not fit the FID Inception network: {', '.join(parts)}; "
            f"expected torch-fidelity's {WEIGHTS_FILE}"
        )


def _skeleton(device: str = "meta"):
    """torch-fidelity's InceptionV3 module with its layers built but no weights loaded.

    The library's constructor builds the layers and then loads weights from a path (or the
    download). Here it reads an in-memory empty dict instead of a file, and a subclass makes the
    load a no-op; on the meta device no memory is allocated. Used for the expected keys and shapes.
    """
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # type: ignore[override]
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    with torch.device(device):
        return _Unloaded(_EXTRACTOR, [_FEATURE], feature_extractor_weights_path=empty, verbose=False)


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the network's weights, as in torch-fidelity's converted TF file.

    ``num_batches_tracked`` buffers are left out: the converted file does not have them and
    BatchNorm fills them in when loading a state dict without version metadata.
    """
    state = _skeleton().state_dict()
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _load_extractor(path: Path | None, device: str):
    """torch-fidelity's InceptionV3 from ``path`` (None: it downloads to the hub cache), on ``device``.

    Raises:
        LatentdimError: ``path`` does not load into the network, or ``device`` is unusable.
        Exception: whatever the download raises when ``path`` is None (the caller reports it).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    if path is not None:
        _check_state_dict(path)
    with warnings.catch_warnings():
        # torch.load(weights_only=False) inside the library may warn about pickles; the file
        # passed the weights_only=True check above.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            # verbose=False: no download progress bar and no messages.
            extractor = FeatureExtractorInceptionV3(
                _EXTRACTOR,
                [_FEATURE],
                feature_extractor_weights_path=None if path is None else str(path),
                verbose=False,
            )
        except Exception as exc:
            if path is None:
                raise
            raise LatentdimError(f"FID Inception weights {path} do not load: {_first_line(exc)}") from None
    try:
        return extractor.to(device)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise LatentdimError(f"cannot move the FID Inception network to device {device!r}: {_first_line(exc)}") from None


def _features(extractor, images: np.ndarray, batch_size: int, device: str, on_batch=None):  # noqa: ANN001
    """2048-d pool features (N, 2048) float32 CPU tensor of uint8 (N, 3, H, W) images;
    ``on_batch(images_done)`` after each batch."""
    import torch

    chunks = []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(device)
            (feats,) = extractor(batch)
            chunks.append(feats.cpu())
            if on_batch is not None:
                on_batch(start + batch.shape[0])
    return torch.cat(chunks, dim=0)


def compute_fid(
    generated: np.ndarray,
    real: np.ndarray,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    kid_subset_size: int = 1000,
    allow_download: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> FidResult:
    """FID and KID between two image sets in torch-fidelity's FID Inception features.

    Args:
        generated: (N, C, H, W) float in [0, 1] or uint8 0..255, C in (1, 3). Grayscale is
            repeated to 3 channels (the pytorch-fid / torch-fidelity convention); floats are
            rounded to uint8, the input torch-fidelity's extractor asserts. Any H, W: the
            extractor resizes to 299 x 299 itself (TF1-compatible bilinear).
        real: the reference set, same conventions; C and H, W may differ from ``generated``.
        weights: the Inception weights file; None looks it up (see :func:`find_weights`).
        device: torch device for the network ("cpu", "cuda", "cuda:1", ...).
        batch_size: images per forward pass.
        kid_subset_size: KID subset size; min(kid_subset_size, samples) is used.
        allow_download: when no weights file is found, let torch-fidelity download it into the
            torch hub cache if the download host answers within 2 s.
        on_progress: called as ``on_progress(done, total)`` after each batch of images through
            the network (``total`` counts both sets; about half a second an image on a CPU).

    Returns:
        A :class:`FidResult`. Both sets are cut to the smaller size (``samples``), as FID is biased
        by the sample count. When no weights are found and none can be downloaded, ``fid`` and
        the KID fields are None and ``reason`` says how to supply the file.

    Raises:
        LatentdimError: malformed images; an explicit / $LATENTDIM_FID_WEIGHTS path that does not
            exist; a weights file that exists but does not load into the network.
    """
    gen = _to_uint8_rgb(generated, "generated")
    ref = _to_uint8_rgb(real, "real")
    if batch_size < 1:
        raise LatentdimError(f"batch_size must be >= 1, got {batch_size}")
    if kid_subset_size < 2:
        raise LatentdimError(f"kid_subset_size must be >= 2, got {kid_subset_size}")
    n = min(gen.shape[0], ref.shape[0])
    gen, ref = gen[:n], ref[:n]

    path = find_weights(weights)
    if path is None:
        if not (allow_download and online()):
            return FidResult(None, None, None, n, missing_weights_reason(), None)
        try:
            extractor = _load_extractor(None, device)
        except Exception as exc:  # network, HTTP, or a broken download: report, don't crash
            reason = f"download of {WEIGHTS_FILE} failed ({_first_line(exc)}); {missing_weights_reason()}"
            return FidResult(None, None, None, n, reason, None)
        path = _cache_path()
    else:
        extractor = _load_extractor(path, device)

    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_featuresdict_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_featuresdict_to_metric

    gen_done = None if on_progress is None else lambda done: on_progress(done, 2 * n)
    ref_done = None if on_progress is None else lambda done: on_progress(n + done, 2 * n)
    feats_gen = {_FEATURE: _features(extractor, gen, batch_size, device, gen_done)}
    feats_ref = {_FEATURE: _features(extractor, ref, batch_size, device, ref_done)}
    stats_gen = fid_featuresdict_to_statistics(feats_gen, _FEATURE)
    stats_ref = fid_featuresdict_to_statistics(feats_ref, _FEATURE)
    fid = fid_statistics_to_metric(stats_gen, stats_ref, verbose=False)[KEY_METRIC_FID]
    kid = kid_featuresdict_to_metric(
        feats_gen, feats_ref, _FEATURE, kid_subset_size=min(kid_subset_size, n), verbose=False
    )
    return FidResult(
        fid=float(fid),
        kid_mean=float(kid[KEY_METRIC_KID_MEAN]),
        kid_std=float(kid[KEY_METRIC_KID_STD]),
        samples=n,
        reason=None,
        weights=str(path),
    )
