"""Fuzz tests (issue 6): odd HDF5 files and broken image files never end in a traceback.

Every case drives ``latentdim estimate`` in-process (tests/clihelpers.py) on a tiny model and must
end in one of two ways: a valid run (exit code 0, stdout exactly one JSON object) or one clear
``error:`` line on stderr with exit code 2. Where the outcome is certain from the data (well-formed
vectors or images with enough samples, or data that is plainly invalid), the test also checks
which of the two it is, and for image folders that ``skipped_files`` counts the unreadable files.

Hypothesis runs derandomised, so CI sees the same examples every time.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from clihelpers import one_error_line, run

TINY = ("--capacity", "2", "--width", "4", "--max-steps", "1", "--batch-size", "2", "--seed", "0")
FUZZ = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def _estimate(source: Path, *extra: str, baselines: bool = False):
    """Runs a tiny ``estimate``; returns the JSON dict on success, None on a clean one-line error."""
    args = ["estimate", source, *TINY, "--json", *extra]
    if not baselines:
        args.append("--no-baselines")
    # Under pytest a warning would be recorded, not printed; on the command line it is one more
    # line on stderr. Record them here and count them as output.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(*args)
    printed = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    assert not printed, f"warnings reach the user: {printed}\n{result.output}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}") from result.exception
    if result.exit_code == 0:
        assert "Traceback" not in result.output
        return json.loads(result.stdout)
    one_error_line(result)
    return None


def _check(outcome, expected: bool | None, context: str) -> None:
    """``expected`` True: must run; False: must fail with one line; None: either is fine."""
    if expected is True:
        assert outcome is not None, f"expected a valid run: {context}"
    elif expected is False:
        assert outcome is None, f"expected one error line: {context}"


# ---------------------------------------------------------------------------------------------
# HDF5 files

DTYPES = [
    np.dtype("uint8"), np.dtype("int16"), np.dtype("uint16"), np.dtype("int64"), np.dtype("float16"),
    np.dtype("float32"), np.dtype("float64"), np.dtype("bool"), np.dtype("complex64"), np.dtype("S4"),
    np.dtype([("a", "<f4"), ("b", "<i2")]), h5py.string_dtype(),
]
FLOAT_SPECIALS = [
    math.nan, math.inf, -math.inf, 1e308, -1e308, 3.4e38, -3.4e38, 65504.0, -1.0, 2.0, 256.0, -0.0,
    1.0, 0.0, 1.0000001, -1e-9, 1e-40,
]
INT_SPECIALS = [-1, 0, 255, 256, 65535, -(2**63), 2**63 - 1, 2**15 - 1, -(2**15)]
VALUE_KINDS = ["unit", "bytes", "wide", "normal", "constant"]

small_dim = st.integers(0, 6)
spatial = st.integers(8, 12)
samples = st.integers(2, 6) | st.integers(0, 6)  # mostly enough rows for one batch of 2


@st.composite
def shapes(draw, forms=("any", "vectors", "nhw", "nhwc", "nchw", "null"), samples=samples) -> tuple[int, ...] | None:
    """Shapes of rank 0..5 (None: a null dataspace), often with images' layouts and sizes."""
    form = draw(st.sampled_from(forms))
    if form == "null":
        return None
    if form == "vectors":
        return (draw(samples), draw(small_dim))
    if form == "nhw":
        return (draw(samples), draw(spatial), draw(spatial))
    if form in ("nhwc", "nchw"):
        channels = draw(st.sampled_from([1, 3, 4]))
        height, width = draw(spatial), draw(spatial)
        return (draw(samples), height, width, channels) if form == "nhwc" else (draw(samples), channels, height, width)
    return tuple(draw(st.lists(small_dim, min_size=0, max_size=5)))


def _values(shape: tuple[int, ...], dtype: np.dtype, kind: str, seed: int, specials: list[tuple[int, int]]) -> np.ndarray:
    """An array of ``shape`` and ``dtype``: a value pattern, then special values at a few places."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "unit":
            base = rng.random(n)
        elif kind == "bytes":
            base = rng.integers(0, 256, n).astype(np.float64)
        elif kind == "wide":
            base = rng.normal(0.0, 1e6, n)
        elif kind == "normal":
            base = rng.normal(0.0, 1.0, n)
        else:
            base = np.full(n, rng.integers(0, 2) * 0.5)
        if dtype.kind == "b":
            flat = base > 0.5
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            flat = np.clip(np.rint(base), info.min, info.max).astype(dtype)
            if kind == "wide":
                flat = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        elif dtype.kind == "f":
            flat = base.astype(dtype)
        elif dtype.kind == "c":
            flat = (base + 1j * rng.normal(size=n)).astype(dtype)
        elif dtype.kind == "S":
            flat = np.array([rng.bytes(4) for _ in range(n)], dtype=dtype)
        elif dtype.kind == "V":
            flat = np.zeros(n, dtype=dtype)
            flat["a"], flat["b"] = base, rng.integers(-5, 300, n)
        else:  # variable-length str
            flat = np.array([str(v) for v in base], dtype=object)
        if n:
            for position, which in specials:
                if dtype.kind == "f":
                    flat[position % n] = np.asarray(FLOAT_SPECIALS[which % len(FLOAT_SPECIALS)]).astype(dtype)
                elif dtype.kind in "iu":
                    info = np.iinfo(dtype)
                    flat[position % n] = np.clip(INT_SPECIALS[which % len(INT_SPECIALS)], info.min, info.max)
                elif dtype.kind == "c":
                    flat[position % n] = complex(FLOAT_SPECIALS[which % len(FLOAT_SPECIALS)], 1.0)
    return flat.reshape(shape)


@st.composite
def datasets(draw, shape_strategy=shapes(), dtypes=DTYPES) -> dict:
    shape = draw(shape_strategy)
    dtype = draw(st.sampled_from(dtypes))
    kind = draw(st.sampled_from(VALUE_KINDS))
    seed = draw(st.integers(0, 2**16))
    specials = draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 100)), max_size=3))
    if shape is None:
        return {"shape": None, "dtype": dtype, "data": None}
    return {"shape": shape, "dtype": dtype, "data": _values(shape, dtype, kind, seed, specials)}


ALL_FORMS = ["datasets"] * 6 + ["empty", "group", "not_hdf5", "truncated", "corrupt", "dangling"]


@st.composite
def hdf5_cases(draw, forms: list[str] = ALL_FORMS) -> dict:
    form = draw(st.sampled_from(forms))
    case = {"form": form, "datasets": {}, "key": None, "bytes": b"", "cut": 0.0, "patches": []}
    if form == "not_hdf5":
        case["bytes"] = draw(st.binary(max_size=600))
    if form in ("datasets", "truncated", "corrupt"):
        names = draw(st.sampled_from([["x"], ["g/x"], ["x", "y"], ["a", "g/b"]]))
        case["datasets"] = {name: draw(datasets()) for name in names}
        key_mode = draw(st.sampled_from(["none", "name", "name", "slash", "wrong"]))
        chosen = draw(st.sampled_from(names))
        case["key"] = {"none": None, "name": chosen, "slash": "/" + chosen, "wrong": "nope"}[key_mode]
    if form == "truncated":
        case["cut"] = draw(st.floats(0.0, 0.99))
    if form == "corrupt":  # random bytes written over a valid file, past its signature
        case["patches"] = draw(st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
    return case


@st.composite
def baseline_cases(draw) -> dict:
    """One well-formed numeric dataset, often degenerate (constant, duplicate or few rows)."""
    spec = draw(datasets(
        shapes(forms=("vectors", "nhw", "nhwc", "nchw"), samples=st.integers(2, 6)),
        [dt for dt in DTYPES if dt.kind in "biuf"],
    ))
    return {"form": "datasets", "datasets": {"x": spec}, "key": None, "bytes": b"", "cut": 0.0, "patches": []}


def _write_hdf5(path: Path, case: dict) -> None:
    form = case["form"]
    if form == "not_hdf5":
        path.write_bytes(case["bytes"])
        return
    with h5py.File(path, "w") as file:
        if form == "group":
            file.create_group("g/h")
        elif form == "dangling":
            file["x"] = h5py.SoftLink("/nowhere")
            file["y"] = h5py.ExternalLink("missing.h5", "/x")
        for name, spec in case["datasets"].items():
            if spec["shape"] is None:
                file.create_dataset(name, data=h5py.Empty(spec["dtype"] if spec["dtype"].kind != "O" else "f4"))
            else:
                file.create_dataset(name, data=spec["data"], dtype=spec["dtype"])
    if form == "truncated":
        size = path.stat().st_size
        with open(path, "r+b") as file:
            file.truncate(int(size * case["cut"]))
    if form == "corrupt":
        size = path.stat().st_size
        with open(path, "r+b") as file:
            for where, junk in case["patches"]:
                file.seek(8 + int((size - 8) * where))
                file.write(junk)


def _images_valid(data: np.ndarray) -> bool:
    kind = data.dtype.kind
    if data.dtype in (np.uint8, np.uint16) or kind == "b":
        return True
    if kind in "iu":
        return bool(np.all((data >= 0) & (data <= 255)))
    return bool(np.all((data >= 0) & (data <= 1)))


def _hdf5_expected(case: dict) -> bool | None:
    """Whether the run must succeed (True), must fail (False), or may do either (None)."""
    names = list(case["datasets"])
    if case["form"] in ("empty", "group", "not_hdf5", "dangling"):
        return False
    if case["form"] in ("truncated", "corrupt"):
        return None
    key = case["key"]
    if key is None and len(names) != 1:
        return False
    name = names[0] if key is None else key.strip("/")
    if name not in names:
        return False
    spec = case["datasets"][name]
    shape, data = spec["shape"], spec["data"]
    if shape is None or len(shape) not in (2, 3, 4) or spec["dtype"].kind not in "biuf" or shape[0] < 2:
        return False
    if len(shape) == 2:
        if shape[1] == 0:
            return False
        with np.errstate(over="ignore"):
            return bool(np.all(np.isfinite(data.astype(np.float32))))
    if len(shape) == 3:
        height, width = shape[1:]
    else:
        first, last = shape[1] in (1, 3, 4), shape[3] in (1, 3, 4)
        if not (first or last):
            return False
        if first and last:
            return None  # the ambiguous-layout rule is tested in test_images.py
        height, width = shape[2:] if first else shape[1:3]
    if min(height, width) == 0:
        return False  # any other size runs: without --image-size the preset's resolution applies
    if len(shape) == 4:  # a fourth channel is alpha, dropped before the values are checked
        data = data[:, :3] if first else data[..., :3]
    return _images_valid(data)


def _run_hdf5_case(case: dict, baselines: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.h5"
        _write_hdf5(path, case)
        extra = () if case["key"] is None else ("--key", case["key"])
        outcome = _estimate(path, *extra, baselines=baselines)
        summary = {k: (v["shape"], str(v["dtype"])) for k, v in case["datasets"].items()}
        expected = _hdf5_expected(case)
        if baselines and expected:
            expected = None  # constant or duplicate data makes the classical estimators fail (one line)
        _check(outcome, expected, f"{case['form']} {summary} key={case['key']!r}")


@settings(FUZZ, max_examples=60)
@given(hdf5_cases())
def test_fuzz_hdf5_shapes_dtypes_and_values(case):
    _run_hdf5_case(case, baselines=False)


@settings(FUZZ, max_examples=20)
@given(baseline_cases())
def test_fuzz_hdf5_with_baselines(case):
    _run_hdf5_case(case, baselines=True)


# ---------------------------------------------------------------------------------------------
# Image folders

EXTENSIONS = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "PNG", "JPG"]
MODES = ["L", "RGB", "RGBA", "P", "I;16", "1"]
# Signatures that make Pillow read on into the random bytes after them.
SIGNATURES = [
    b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM",
    b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
]


def _picture(mode: str, width: int, height: int, seed: int, fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    per_pixel = {"L": 1, "P": 1, "RGB": 3, "RGBA": 4, "I;16": 2}
    length = ((width + 7) // 8) * height if mode == "1" else per_pixel[mode] * width * height
    image = Image.frombytes(mode, (width, height), rng.bytes(length))
    if mode == "P":
        image.putpalette(rng.bytes(768))
    if fmt == "JPEG" and mode not in ("L", "RGB", "1"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


valid_images = st.builds(
    lambda mode, width, height, seed, fmt: (_picture(mode, width, height, seed, fmt), "png" if fmt == "PNG" else "jpg"),
    st.sampled_from(MODES), st.integers(1, 40), st.integers(1, 30), st.integers(0, 2**16), st.sampled_from(["PNG", "JPEG"]),
)


@st.composite
def broken_images(draw) -> tuple[bytes, str]:
    ext = draw(st.sampled_from(EXTENSIONS))
    form = draw(st.sampled_from(["random", "empty", "signature", "truncated"]))
    if form == "empty":
        return b"", ext
    if form == "signature":
        return draw(st.sampled_from(SIGNATURES)) + draw(st.binary(max_size=200)), ext
    if form == "truncated":
        data, ext = draw(valid_images)
        return data[: draw(st.integers(0, len(data) - 1))], ext
    return draw(st.binary(max_size=300)), ext


@st.composite
def folder_cases(draw, max_broken: int = 4, valid: tuple[int, int] = (0, 3)) -> dict:
    broken = draw(st.lists(broken_images(), min_size=1, max_size=max_broken))
    valid = draw(st.lists(valid_images, min_size=valid[0], max_size=valid[1]))
    files = [(data, ext) for data, ext in broken + valid]
    order = draw(st.permutations(range(len(files))))
    return {
        "files": [files[i] for i in order],
        "strict": draw(st.booleans()),
        "image_size": draw(st.sampled_from([None, None, 8, 16])),
        "extras": draw(st.booleans()),  # a hidden image and a non-image file, both ignored
        "subfolder": draw(st.booleans()),
    }


def _classify(path: Path) -> tuple[str, tuple[int, int] | None]:
    """Pillow's own verdict on one file: ("ok" | "broken" | "bomb", header size or None)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(path)
    except Image.DecompressionBombError:
        return "bomb", None
    except Exception:
        return "broken", None
    with image:
        size = image.size
        if Image.MAX_IMAGE_PIXELS is not None and size[0] * size[1] > Image.MAX_IMAGE_PIXELS:
            return "bomb", size
        try:
            image.load()
        except Exception:
            return "broken", size
    return "ok", size


def _folder_expected(verdicts: list[tuple[str, tuple[int, int] | None]], strict: bool, image_size: int | None) -> bool | None:
    kinds = [kind for kind, _ in verdicts]
    # Without --image-size the preset's resolution (at least 16) applies, so any size runs.
    return not ("bomb" in kinds or (strict and "broken" in kinds) or kinds.count("ok") < 2)


def _run_folder_case(case: dict, baselines: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        paths = []
        for index, (data, ext) in enumerate(case["files"]):
            relative = f"{index:02d}.{ext}" if not (case["subfolder"] and index % 2) else f"sub/{index:02d}.{ext}"
            path = folder / relative
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        if case["extras"]:
            (folder / ".hidden.png").write_bytes(b"not an image")
            (folder / "notes.txt").write_text("not an image")
        # The loader reads files in the order of their relative POSIX paths.
        paths.sort(key=lambda p: p.relative_to(folder).as_posix())
        verdicts = [_classify(p) for p in paths]
        extra = [] if case["image_size"] is None else ["--image-size", str(case["image_size"])]
        if case["strict"]:
            extra.append("--strict")
        outcome = _estimate(folder, *extra, baselines=baselines)
        expected = _folder_expected(verdicts, case["strict"], case["image_size"])
        if baselines and expected:
            expected = None
        context = f"verdicts={verdicts} strict={case['strict']} size={case['image_size']}"
        _check(outcome, expected, context)
        if outcome is not None:
            broken = sum(kind != "ok" for kind, _ in verdicts)
            assert outcome["skipped_files"] == broken, context


@settings(FUZZ, max_examples=40)
@given(folder_cases())
def test_fuzz_image_folders_with_broken_files(case):
    _run_folder_case(case, baselines=False)


@settings(FUZZ, max_examples=20)
@given(folder_cases(max_broken=2, valid=(2, 5)))  # enough images to reach the estimators
def test_fuzz_image_folders_with_baselines(case):
    _run_folder_case(case, baselines=True)


# ---------------------------------------------------------------------------------------------
# What the fuzzing found, pinned: these failed with a traceback (or an extra stderr line) before.


def test_corrupt_hdf5_object_tree_is_one_line(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["g/x"] = np.random.default_rng(0).random((4, 3))
    raw = bytearray(path.read_bytes())
    at = raw.find(b"TREE")  # the group's B-tree: visititems raised RuntimeError
    assert at > 0
    raw[at : at + 4] = b"XXXX"
    path.write_bytes(bytes(raw))
    result = run("estimate", path, *TINY, "--no-baselines")
    assert "cannot read HDF5 file" in one_error_line(result)


def test_missing_external_hdf5_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # HDF5 finds relative external files from the working folder
    for shape in [(4, 3), (4, 8, 8)]:  # the vector and the image reader
        path = tmp_path / f"data{len(shape)}.h5"
        with h5py.File(path, "w") as file:
            dataset = file.create_dataset("x", shape, dtype="f4", external=[("raw.bin", 0, 4 * math.prod(shape))])
            dataset[...] = 0.5
        os.remove(tmp_path / "raw.bin")  # reading the data raised OSError
        line = one_error_line(run("estimate", path, *TINY, "--no-baselines"))
        assert f"cannot read {path}:x (" in line and "external raw data file" in line


def test_non_utf8_dataset_name_does_not_break_the_listing(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset(b"\xff\xfe", data=np.zeros((3, 2)))  # sorting bytes with str raised TypeError
        file["a"] = np.random.default_rng(0).random((4, 2))
    assert "holds several datasets (\\xff\\xfe, a)" in one_error_line(run("estimate", path, *TINY, "--no-baselines"))
    assert _estimate(path, "--key", "a") is not None
    one_error_line(run("estimate", path, *TINY, "--no-baselines", "--key", "\\xff\\xfe"))


def test_vectors_in_large_units_run(tmp_path):
    # Few samples spread over 1e5..1e18: sqrtm's noise in the data-space Frechet distance exceeded
    # its absolute tolerance and raised ValueError after training.
    rows = {
        "x": np.array([[65504.0, -251085.8, -732339.0], [-434910.5, 991741.3, -1e-9]]),
        "y": np.random.default_rng(0).integers(-(2**62), 2**62, (6, 4)),
    }
    for name, data in rows.items():
        path = tmp_path / f"{name}.h5"
        with h5py.File(path, "w") as file:
            file["x"] = data
        outcome = _estimate(path)
        assert outcome is not None and math.isfinite(outcome["frechet_distance"])


def test_tiff_header_with_corrupt_exif_is_skipped_silently(tmp_path):
    # Pillow warned "Corrupt EXIF data" on stderr: a second line before the error line.
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "bad.gif").write_bytes(b"II*\x00\x08\x00\x00\x00")
    for index in range(2):
        (folder / f"ok{index}.png").write_bytes(_picture("RGB", 9, 9, index, "PNG"))
    outcome = _estimate(folder)  # _estimate fails on any warning
    assert outcome is not None and outcome["skipped_files"] == 1
    assert _estimate(folder, "--strict") is None
