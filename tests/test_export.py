"""ONNX export of the masked generator and `latentdim sample` (issue 5).

References are computed here straight from SPEC §2 (latent = mu * z on the active coordinates,
0 elsewhere; decoder; back to user units), never through latentdim.export's own module.
"""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from torch import nn

import latentdim
from clihelpers import one_error_line, run
from latentdim import onnx_format
from latentdim.checkpoint import load_checkpoint
from latentdim.export import export_model, export_onnx
from latentdim.models import MaskAAE, ModelSpec
from latentdim.models.mask import Mask
from latentdim.sample import open_generator, sample
from latentdim.training import TrainConfig

# mu = 1 - exp(-theta) = [0.865, 0, 0.393, 0.950]: coordinate 1 closed, m_A = 3, active [0, 2, 3].
THETA = [2.0, 0.0, 0.5, 3.0]
ACTIVE = [0, 2, 3]




def ort_run(path, z: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]


def with_theta(checkpoint, theta, path):
    """A copy of ``checkpoint`` whose mask parameters are set by hand."""
    state = torch.load(checkpoint, weights_only=True)
    state["model"]["mask.theta"] = torch.tensor(theta)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained vector model (d = 6, m = 4) with its mask set to THETA."""
    out = tmp_path_factory.mktemp("run")
    # Data far from 0 with unequal scales, so a missing destandardisation would show.
    x = 5.0 + 3.0 * np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    latentdim.estimate(x, capacity=4, config=TrainConfig(max_steps=5, batch_size=16), width=16, out=out, device="cpu")
    with_theta(out / "checkpoint.pt", THETA, out / "checkpoint.pt")
    return out


@pytest.fixture(scope="module")
def vector_onnx(run_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    info = export_onnx(run_dir, path)
    return path, info


@pytest.fixture(scope="module")
def image_model():
    """A hand-made image MaskAAE: decoder Linear(4 -> 1*4*5) giving logits of (1, 4, 5) images."""
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(4, 20), nn.Unflatten(1, (1, 4, 5)))
    mask = Mask(4)
    with torch.no_grad():
        mask.theta.copy_(torch.tensor(THETA))
    model = MaskAAE(nn.Identity(), decoder, nn.Identity(), mask).eval()
    spec = ModelSpec("hand-made", (1, 4, 5), 4)
    state = {"config": {"reconstruction": "bce"}, "seed": 7, "result": {"fid": 12.5}}
    return model, spec, state


def spec_reference(decoder: nn.Module, theta, z: np.ndarray) -> np.ndarray:
    """SPEC §2 generation on the active coordinates, in torch: D(latent), latent[:, active] = mu * z."""
    mu = 1.0 - torch.exp(-torch.tensor(theta))
    latent = torch.zeros(z.shape[0], len(theta))
    latent[:, ACTIVE] = torch.from_numpy(z) * mu[ACTIVE]
    with torch.no_grad():
        return decoder(latent).numpy()


# ---------------------------------------------------------------------------------- export


def test_onnx_matches_torch_for_vectors(run_dir, vector_onnx):
    path, _ = vector_onnx
    model, _, state = load_checkpoint(run_dir / "checkpoint.pt")
    z = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    mean, std = (np.asarray(state["standardiser"][k], dtype=np.float32) for k in ("mean", "std"))
    expected = spec_reference(model.decoder, THETA, z) * std + mean
    got = ort_run(path, z)
    assert got.shape == (64, 6) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5


def test_input_is_m_active_and_metadata_round_trips(run_dir, vector_onnx):
    path, info = vector_onnx
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    (z,) = model.graph.input
    dims = z.type.tensor_type.shape.dim
    assert z.name == "z" and dims[0].dim_param and dims[1].dim_value == 3 == info.m_active
    props = {p.key: p.value for p in model.metadata_props}
    assert all(json.loads(props[onnx_format.PREFIX + k]) == v for k, v in info.metadata.items())
    assert set(onnx_format.KEYS) <= set(info.metadata)
    assert open_generator(path).metadata == info.metadata  # the torch-free reader sees the same

    result = json.loads((run_dir / "result.json").read_text())
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    meta = info.metadata
    assert meta["format_version"] == onnx_format.FORMAT_VERSION and meta["version"] == latentdim.__version__
    assert (meta["m_active"], meta["capacity"], meta["active"]) == (3, 4, ACTIVE)
    np.testing.assert_allclose(meta["mask"], 1.0 - np.exp(-np.array(THETA)), rtol=1e-6)
    assert meta["preset"] == "mlp" and meta["data_shape"] == [6] and meta["output"] == "vectors"
    assert meta["output_dtype"] == "float32" and meta["z_distribution"] == "normal" and meta["use_mask"] is True
    np.testing.assert_allclose(meta["standardisation"]["mean"], state["standardiser"]["mean"])
    np.testing.assert_allclose(meta["standardisation"]["std"], state["standardiser"]["std"])
    assert meta["seed"] == 0 and meta["frechet_distance"] == result["frechet_distance"] and meta["fid"] is None


def test_cli_export_takes_run_dir_or_checkpoint(run_dir, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    result = run("export", run_dir, "-o", a)
    assert result.exit_code == 0, result.output
    assert "m_A = 3 of capacity 4" in result.stderr and result.stdout == ""
    assert run("export", run_dir / "checkpoint.pt", "--output", b).exit_code == 0
    z = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(ort_run(a, z), ort_run(b, z))


def test_image_export_applies_sigmoid_and_uint8(image_model, tmp_path):
    model, spec, state = image_model
    z = np.random.default_rng(3).normal(size=(16, 3)).astype(np.float32)
    expected = 1.0 / (1.0 + np.exp(-spec_reference(model.decoder, THETA, z).astype(np.float64)))

    info = export_model(model, spec, state, tmp_path / "img.onnx")
    got = ort_run(info.path, z)
    assert (info.kind, info.output_shape, info.output_dtype) == ("images", (1, 4, 5), "float32")
    assert got.shape == (16, 1, 4, 5) and np.abs(got - expected).max() <= 1e-5
    assert info.metadata["fid"] == 12.5 and info.metadata["seed"] == 7 and info.metadata["standardisation"] is None

    info8 = export_model(model, spec, state, tmp_path / "img8.onnx", uint8=True)
    got8 = ort_run(info8.path, z)
    assert info8.output_shape == (3, 4, 5) and info8.metadata["output_dtype"] == "uint8"
    assert got8.dtype == np.uint8 and got8.shape == (16, 3, 4, 5)
    levels = np.rint(expected * 255.0)  # gray repeated to three channels
    assert np.abs(got8.astype(np.int16) - levels).max() <= 1  # rounding at a .5 boundary may differ


def test_export_refuses_m_active_zero(run_dir, tmp_path):
    closed = with_theta(run_dir / "checkpoint.pt", [0.0, 0.0, 0.0, 0.0], tmp_path / "closed.pt")
    line = one_error_line(run("export", closed, "-o", tmp_path / "m.onnx"))
    assert "m_A = 0" in line
    assert not (tmp_path / "m.onnx").exists()


def test_export_bad_inputs(run_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    out = tmp_path / "m.onnx"
    cases = [
        (["export", tmp_path / "missing", "-o", out], "no such file"),
        (["export", tmp_path / "empty", "-o", out], "holds no checkpoint.pt"),
        (["export", tmp_path / "junk.pt", "-o", out], "not a readable latentdim checkpoint"),
        (["export", run_dir, "-o", tmp_path / "no-folder" / "m.onnx"], "does not exist"),
        (["export", run_dir, "-o", tmp_path / "empty"], "is a folder"),
        (["export", run_dir, "-o", out, "--uint8"], "image models only"),
    ]
    for args, message in cases:
        assert message in one_error_line(run(*args)), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "junk.pt"]
    assert list((tmp_path / "empty").iterdir()) == []


def test_export_leaves_no_partial_file(run_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("checker failed")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(RuntimeError):
        export_onnx(run_dir, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- sample


def test_sample_is_deterministic_and_batch_size_free(vector_onnx, tmp_path):
    path, _ = vector_onnx
    sample(path, 20, tmp_path / "a", seed=4)
    sample(path, 20, tmp_path / "b", seed=4, batch_size=7)
    sample(path, 20, tmp_path / "c", seed=5, fmt="npy")
    a = h5py.File(tmp_path / "a" / "samples.h5", "r")["samples"][:]
    b = h5py.File(tmp_path / "b" / "samples.h5", "r")["samples"][:]
    c = np.load(tmp_path / "c" / "samples.npy")
    # Closed form of the sampler: z = default_rng(seed).standard_normal((n, k)) in float32.
    z = np.random.default_rng(4).standard_normal((20, 3)).astype(np.float32)
    np.testing.assert_array_equal(a, ort_run(path, z))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert a.shape == c.shape == (20, 6) and not np.allclose(a, c)
    assert sorted(os.listdir(tmp_path / "a")) == ["samples.h5"]


def test_cli_sample_vectors(vector_onnx, tmp_path):
    path, _ = vector_onnx
    result = run("sample", path, "-n", 10, "-o", tmp_path / "s", "--seed", 1, "--batch-size", 4, "--format", "npy")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "wrote 10 vectors" in result.stderr and "warning" not in result.stderr
    assert np.load(tmp_path / "s" / "samples.npy").shape == (10, 6)


def test_sample_images_writes_pngs_and_grid(image_model, tmp_path):
    model, spec, state = image_model
    info = export_model(model, spec, state, tmp_path / "img.onnx")
    result = run("sample", info.path, "-n", 5, "-o", tmp_path / "s", "--seed", 2)
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(tmp_path / "s"))
    assert names == ["grid.png"] + [f"sample_0000{i}.png" for i in range(5)]
    expected = np.rint(ort_run(info.path, np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)) * 255)
    for i in range(5):
        png = np.asarray(Image.open(tmp_path / "s" / f"sample_0000{i}.png"))
        assert png.shape == (4, 5) and png.dtype == np.uint8
        np.testing.assert_array_equal(png, expected[i, 0])
    assert Image.open(tmp_path / "s" / "grid.png").size == (3 * 5, 2 * 4)  # 5 tiles: 3 columns, 2 rows
    line = one_error_line(run("sample", info.path, "-n", 5, "-o", tmp_path / "t", "--format", "npy"))
    assert "vector models" in line and not (tmp_path / "t").exists()


def test_sample_runs_without_torch(vector_onnx, image_model, tmp_path):
    model, spec, state = image_model
    images = export_model(model, spec, state, tmp_path / "img.onnx").path
    vectors, _ = vector_onnx
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from latentdim.sample import sample\n"
        f"sample({str(images)!r}, 3, {str(tmp_path / 'img')!r})\n"
        "from latentdim.cli import app\n"
        f"sys.argv = ['latentdim', 'sample', {str(vectors)!r}, '-n', '5', '-o', {str(tmp_path / 'vec')!r}]\n"
        "app()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "vec" / "samples.h5").is_file() and (tmp_path / "img" / "grid.png").is_file()


def foreign_onnx(path, input_shape, elem_type=TensorProto.FLOAT, inputs=1, weight=None):
    """A generator not made by latentdim: x = z @ W (or z itself when W is None)."""
    names = [f"in{i}" for i in range(inputs)]
    graph_inputs = [helper.make_tensor_value_info(n, elem_type, input_shape) for n in names]
    if weight is None:
        nodes, inits = [helper.make_node("Identity", [names[0]], ["x"])], []
        out_shape = input_shape
    else:
        inits = [helper.make_tensor("W", TensorProto.FLOAT, weight.shape, weight.ravel().tolist())]
        nodes = [helper.make_node("MatMul", [names[0], "W"], ["x"])]
        out_shape = [input_shape[0], weight.shape[1]]
    outputs = [helper.make_tensor_value_info("x", elem_type, out_shape)]
    graph = helper.make_graph(nodes, "g", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_foreign_generator_warns_and_samples(tmp_path):
    w = np.arange(15, dtype=np.float32).reshape(3, 5) / 10
    dynamic = foreign_onnx(tmp_path / "dyn.onnx", ["N", 3], weight=w)
    fixed = foreign_onnx(tmp_path / "fixed.onnx", [4, 3], weight=w)  # batch fixed at 4: padded
    result = run("sample", dynamic, "-n", 10, "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "no latentdim metadata" in result.stderr
    with pytest.warns(UserWarning, match="no latentdim metadata"):
        sample(fixed, 10, tmp_path / "b", fmt="npy")
    z = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    np.testing.assert_allclose(h5py.File(tmp_path / "a" / "samples.h5", "r")["samples"][:], z @ w, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "b" / "samples.npy"), z @ w, atol=1e-6)


def test_sample_bad_inputs(vector_onnx, tmp_path):
    model, _ = vector_onnx
    (tmp_path / "notonnx.onnx").write_text("hello")
    (tmp_path / "a_file").write_text("x")
    two = foreign_onnx(tmp_path / "two.onnx", ["N", 3], inputs=2)
    three_d = foreign_onnx(tmp_path / "3d.onnx", ["N", 3, 4])
    ints = foreign_onnx(tmp_path / "int.onnx", ["N", 3], elem_type=TensorProto.INT64)
    out = tmp_path / "out"
    cases = [
        (["sample", tmp_path / "missing.onnx", "-o", out], "no such file"),
        (["sample", tmp_path, "-o", out], "is a folder"),
        (["sample", tmp_path / "notonnx.onnx", "-o", out], "not a readable ONNX model"),
        (["sample", two, "-o", out], "has 2 inputs"),
        (["sample", three_d, "-o", out], "shape (batch, k)"),
        (["sample", ints, "-o", out], "shape (batch, k)"),
        (["sample", model, "-n", 0, "-o", out], "at least 1"),
        (["sample", model, "--batch-size", 0, "-o", out], "at least 1"),
        (["sample", model, "-o", tmp_path / "a_file"], "not a folder"),
        (["sample", model, "-o", tmp_path / "a_file" / "sub"], "cannot create output folder"),
    ]
    for args, message in cases:
        assert message in one_error_line(run(*args)), args
    assert not out.exists() and (tmp_path / "a_file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_sample_read_only_folder(vector_onnx, tmp_path):
    model, _ = vector_onnx
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert "not writable" in one_error_line(run("sample", model, "-o", locked))
        assert "cannot create output folder" in one_error_line(run("sample", model, "-o", locked / "s"))
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_sample_unwritable_folder_as_root_too(vector_onnx, tmp_path, monkeypatch):
    import latentdim.sample as sample_module

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sample_module.tempfile, "mkdtemp", denied)
    model, _ = vector_onnx
    line = one_error_line(run("sample", model, "-o", tmp_path / "s"))
    assert "not writable" in line and "Permission denied" in line
    assert list(tmp_path.iterdir()) == []  # the folder it had created is removed again


def test_sample_failure_midway_leaves_nothing(vector_onnx, tmp_path, monkeypatch):
    import latentdim.sample as sample_module

    def disk_full(batches, n, d, fmt, folder, seed, name):
        (folder / "samples.h5").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sample_module, "_write_vectors", disk_full)
    model, _ = vector_onnx
    line = one_error_line(run("sample", model, "-o", tmp_path / "new" / "s"))
    assert "No space left on device" in line
    assert list(tmp_path.iterdir()) == []  # the staging folder and the folders made for it are gone
    (tmp_path / "kept").mkdir()
    one_error_line(run("sample", model, "-o", tmp_path / "kept"))
    assert list((tmp_path / "kept").iterdir()) == []  # an existing folder stays, empty


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_export_of_a_model_on_the_gpu_leaves_it_there(run_dir, vector_onnx, tmp_path):
    model, spec, state = load_checkpoint(run_dir / "checkpoint.pt", device="cuda")
    model.train()
    info = export_model(model, spec, state, tmp_path / "gpu.onnx")
    assert next(model.parameters()).is_cuda and model.training  # the caller's model is untouched
    z = np.random.default_rng(6).normal(size=(8, info.m_active)).astype(np.float32)
    np.testing.assert_allclose(ort_run(info.path, z), ort_run(vector_onnx[0], z), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- every preset

# (preset, data shape, width): tiny widths so each model builds and exports in well under a second.
PRESET_CASES = [
    ("mlp", (6,), 16),
    ("mnist", (1, 28, 28), 8),
    ("fmnist", (1, 28, 28), 32),
    ("cifar", (3, 32, 32), 32),
    ("celeba", (3, 64, 64), 64),
    ("conv", (1, 20, 20), 64),
    ("conv", (3, 48, 48), 64),
]
# Capacity 5 with coordinates 1 and 4 closed by hand: m_A = 3 < 5, active [0, 2, 3].
PRESET_THETA = [2.0, 0.0, 0.5, 3.0, 0.0]


def randomise_norms(model: nn.Module, seed: int) -> None:
    """Gives every batch norm non-default running statistics and affine parameters, so a graph
    that normalised with the batch's own statistics (training mode) would differ by O(1) from the
    eval-mode reference (fmnist, cifar, celeba, conv; mlp and mnist have no batch norm)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                module.running_var.copy_(0.2 + 0.3 * torch.rand(n, generator=g))
                module.weight.copy_(1.0 + 0.5 * torch.rand(n, generator=g))
                module.bias.copy_(0.2 * torch.rand(n, generator=g))  # >= 0: no channel goes dead in the ReLU


def case_id(case) -> str:
    return f"{case[0]}-{'x'.join(map(str, case[1]))}"


def export_preset(preset, shape, width, folder):
    """A checkpoint of an untrained model of one preset (mask set by hand, batch norms randomised),
    written the way estimate writes one, and its ONNX export through the checkpoint path.

    Returns (spec, folder, ExportInfo)."""
    from dataclasses import asdict

    from latentdim.checkpoint import save_checkpoint
    from latentdim.models import build_model

    torch.manual_seed(0)
    spec = ModelSpec(preset, shape, len(PRESET_THETA), width)
    model = build_model(spec)
    randomise_norms(model, 1)
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor(PRESET_THETA))
    images = len(shape) == 3
    columns = range(shape[0])
    standardiser = None if images else {"mean": [5.0 + i for i in columns], "std": [0.5 + i for i in columns]}
    extra = {
        "config": asdict(TrainConfig(reconstruction="bce" if images else "mse")),
        "standardiser": standardiser,
        "seed": 11,
        "result": {"fid": 42.0} if images else {"frechet_distance": 0.25},
    }
    save_checkpoint(folder / "checkpoint.pt", model, spec, extra)
    return spec, folder, export_onnx(folder, folder / "model.onnx")


@pytest.fixture(scope="module")
def preset_exports(tmp_path_factory):
    """case -> export_preset(case), each made once per module."""
    made = {}

    def get(case):
        if case not in made:
            made[case] = export_preset(*case, tmp_path_factory.mktemp(f"preset-{case[0]}"))
        return made[case]

    return get


@pytest.fixture(params=PRESET_CASES, ids=case_id)
def preset_export(request, preset_exports):
    return preset_exports(request.param)


def test_every_preset_matches_torch_in_eval_mode(preset_export):
    spec, folder, info = preset_export
    model, _, state = load_checkpoint(folder / "checkpoint.pt")
    z = np.random.default_rng(8).normal(size=(7, 3)).astype(np.float32)
    raw = spec_reference(model.decoder.eval(), PRESET_THETA, z).reshape(7, *spec.data_shape).astype(np.float64)
    if len(spec.data_shape) == 3:
        expected = 1.0 / (1.0 + np.exp(-raw))
    else:
        expected = raw * np.asarray(state["standardiser"]["std"]) + np.asarray(state["standardiser"]["mean"])
    got = ort_run(info.path, z)
    assert got.shape == (7, *spec.data_shape) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5
    # Batch norm uses its running statistics: each row alone gives what it gives in a batch of 7
    # (training-mode batch norm on one row would output its bias, whatever z).
    alone = np.concatenate([ort_run(info.path, z[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(alone, got, rtol=0, atol=1e-6)
    assert np.abs(got[0] - got[1]).max() > 1e-4  # and the output does depend on z (100x the tolerance)


def test_every_preset_input_is_m_active_and_metadata_round_trips(preset_export):
    spec, _, info = preset_export
    graph = onnx.load(str(info.path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 3 == info.m_active < spec.capacity
    meta = open_generator(info.path).metadata  # the torch-free reader
    assert meta == info.metadata
    assert (meta["preset"], meta["data_shape"], meta["capacity"]) == (spec.preset, list(spec.data_shape), 5)
    assert (meta["m_active"], meta["active"], meta["seed"]) == (3, ACTIVE, 11)
    images = len(spec.data_shape) == 3
    assert (meta["output"], meta["output_dtype"]) == ("images" if images else "vectors", "float32")
    if images:
        assert meta["standardisation"] is None and meta["fid"] == 42.0 and meta["frechet_distance"] is None
    else:
        assert meta["standardisation"]["std"] == [0.5 + i for i in range(6)] and meta["frechet_distance"] == 0.25


def test_preset_uint8_keeps_three_channels(preset_exports, tmp_path):
    _, folder, info = preset_exports(PRESET_CASES[3])  # cifar, RGB
    info8 = export_onnx(folder, tmp_path / "m8.onnx", uint8=True)
    z = np.random.default_rng(9).normal(size=(4, 3)).astype(np.float32)
    got8 = ort_run(info8.path, z)
    assert got8.dtype == np.uint8 and got8.shape == (4, 3, 32, 32) and info8.metadata["data_shape"] == [3, 32, 32]
    assert np.abs(got8.astype(np.int16) - np.rint(ort_run(info.path, z) * 255.0)).max() <= 1


@pytest.mark.parametrize("case", [PRESET_CASES[1], PRESET_CASES[-1]], ids=case_id)  # gray mnist, RGB conv 48x48
def test_cli_sample_of_a_preset_writes_pngs(case, preset_exports, tmp_path):
    spec, _, info = preset_exports(case)
    c, h, w = spec.data_shape
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        result = run("sample", info.path, "-n", 10, "-o", tmp_path / name, "--seed", seed, "--batch-size", 4)
        assert result.exit_code == 0, result.output
        assert "wrote 10 images" in result.stderr and "warning" not in result.stderr
    names = [f"sample_{i:05d}.png" for i in range(10)]
    assert sorted(os.listdir(tmp_path / "a")) == ["grid.png", *names]
    z = np.random.default_rng(5).standard_normal((10, 3)).astype(np.float32)
    expected = np.rint(np.clip(ort_run(info.path, z), 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, name in enumerate(names):
        with Image.open(tmp_path / "a" / name) as png:
            assert png.format == "PNG" and png.mode == ("L" if c == 1 else "RGB") and png.size == (w, h)
            np.testing.assert_array_equal(np.asarray(png).reshape(h, w, c), expected[i])
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()  # same seed
    assert any((tmp_path / "a" / n).read_bytes() != (tmp_path / "c" / n).read_bytes() for n in names)
    with Image.open(tmp_path / "a" / "grid.png") as grid_png:  # 10 tiles: 4 columns, 3 rows
        assert grid_png.size == (4 * w, 3 * h) and grid_png.mode == ("L" if c == 1 else "RGB")


@pytest.mark.parametrize(
    ("version", "message"),
    [("99", "newer than this latentdim"), ('"one"', "without a format version"), ("{not json", "malformed latentdim metadata")],
)
def test_sample_refuses_unknown_or_newer_onnx_formats(vector_onnx, tmp_path, version, message):
    import onnx

    model = onnx.load(str(vector_onnx[0]))
    for prop in model.metadata_props:
        if prop.key.endswith("format_version"):
            prop.value = version
    path = tmp_path / "future.onnx"
    onnx.save(model, str(path))
    line = one_error_line(run("sample", path, "-n", "2", "-o", tmp_path / "out"))
    assert message in line
    assert not (tmp_path / "out").exists()


def test_sample_reports_progress_after_each_written_batch(vector_onnx, tmp_path):
    path, _ = vector_onnx
    calls = []
    sample(path, 5, tmp_path / "s", batch_size=2, on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    calls.clear()
    sample(path, 1, tmp_path / "t", on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 1)]
