"""Inputs the field uses besides HDF5 (issue 21, item 7): .npy, .npz (with --key), CSV, image arrays,
and one clear line for anything else."""

import json

import numpy as np
import pytest
from clihelpers import one_error_line, run

from latentdim.data import load_source

TINY = ["--width", "16", "--max-steps", "5", "--batch-size", "16", "--no-baselines"]


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)


def _estimate(path, *extra):
    result = run("estimate", path, "-m", "3", "--json", *TINY, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_npy_npz_and_csv_read_the_same_numbers(tmp_path, x):
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", samples=x, labels=np.arange(64))
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b,c,d,e", comments="")  # a header row of names
    np.savetxt(tmp_path / "x.tsv", x, delimiter="\t", fmt="%.9g")  # no header
    np.testing.assert_array_equal(load_source(tmp_path / "x.npy").x, x)
    np.testing.assert_array_equal(load_source(tmp_path / "x.npz", key="samples").x, x)
    np.testing.assert_allclose(load_source(tmp_path / "x.csv").x, x, rtol=1e-6)
    np.testing.assert_allclose(load_source(tmp_path / "x.tsv").x, x, rtol=1e-6)
    for name, extra, source in [("x.npy", [], "x.npy"), ("x.npz", ["--key", "samples"], "x.npz:samples"),
                                ("x.csv", [], "x.csv")]:
        payload = _estimate(tmp_path / name, *extra)
        assert payload["source"].endswith(source) and payload["data_shape"] == [5]


def test_npz_with_several_arrays_needs_the_key_and_names_them(tmp_path, x):
    np.savez(tmp_path / "x.npz", samples=x, labels=np.arange(64))
    line = one_error_line(run("estimate", tmp_path / "x.npz", *TINY))
    assert "labels, samples" in line and "--key" in line
    line = one_error_line(run("estimate", tmp_path / "x.npz", "--key", "other", *TINY))
    assert "'other'" in line and "labels, samples" in line


def test_a_csv_cell_that_is_not_a_number_names_its_line(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    line = one_error_line(run("estimate", tmp_path / "bad.csv", *TINY))
    assert "'oops'" in line and "line 3" in line
    (tmp_path / "ragged.csv").write_text("1,2\n3,4\n5,6,7\n")
    assert "line 3" in one_error_line(run("estimate", tmp_path / "ragged.csv", *TINY))


def test_pickled_npy_and_unknown_formats_are_one_line(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "Python objects" in one_error_line(run("estimate", tmp_path / "obj.npy", *TINY))
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    line = one_error_line(run("estimate", tmp_path / "data.parquet", *TINY))
    assert "not a file latentdim reads" in line and ".npy" in line and ".csv" in line
    np.save(tmp_path / "x.npy", np.zeros((64, 3)))
    assert "--key" in one_error_line(run("estimate", tmp_path / "x.npy", "--key", "x", *TINY))


def test_an_npy_of_images_trains_the_image_model(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "img.npy", images)
    payload = _estimate(tmp_path / "img.npy", "--fid-samples", "8")
    assert payload["data_shape"] == [1, 16, 16] and payload["preset"] == "conv"


def test_the_api_takes_image_arrays_in_memory():
    import latentdim

    images = np.random.default_rng(0).random((40, 16, 16, 3), dtype=np.float32)  # (N, H, W, C) in [0, 1]
    result = latentdim.estimate(images, 3, config=latentdim.TrainConfig(max_steps=3, batch_size=16), width=16,
                                baselines=False, fid_samples=8)
    assert result.data_shape == [3, 16, 16] and result.source == "array"
    with pytest.raises(latentdim.LatentdimError, match=r"\[0, 1\]"):
        latentdim.estimate(images * 2, 3, config=latentdim.TrainConfig(max_steps=3, batch_size=16), width=16,
                           baselines=False)
