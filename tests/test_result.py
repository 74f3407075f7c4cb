"""result.result_rows: the rows the command line's table and report.html both show."""

import subprocess
import sys

from latentdim.result import NO_DIMENSION_LEFT, result_rows, unsettled_text

BASE = {
    "m_active": 3, "capacity": 8, "mask": [0.99, 0.0, 0.5, 0.99], "undecided": 1, "steps": 1234,
    "seconds": 12.345, "stop_reason": "settled", "reconstruction_error": 0.01234, "wasserstein": 0.5,
    "frechet_distance": 1.0, "nac": None, "precision": 0.5, "recall": 0.25, "baselines": {"twonn": 3.14159, "mle": None, "lpca": 3.0},
    "baseline_errors": {"mle": "MLE is undefined: duplicate points"}, "seed": 7, "preset": "mlp", "data_shape": [5],
    "source": "x.h5", "device": "cpu", "schedule": "latentdim", "use_mask": True, "settled": True, "phase": "refine",
}


def _rows(**changes):
    return {row.label: row for row in result_rows({**BASE, **changes})}


def test_rows_by_hand():
    rows = _rows()
    assert rows["active dimensions m_A"].text == "3 of capacity 8" and rows["active dimensions m_A"].tone == "answer"
    compare = rows["m_A | TwoNN | MLE | lPCA"]
    assert compare.text == "3 | 3.14 | undefined (duplicate points) | 3.00"
    assert compare.cells[0] == ("m_A", "3")
    assert rows["steps"].text == "1234 (settled) in 12.3 s on cpu"
    assert rows["reconstruction error"].text == "0.0123" and rows["NAC (active dims)"].text == "n/a"
    assert rows["Frechet distance (data space)"].text == "1.0000"
    assert rows["precision / recall (k = 3)"].text == "0.500 / 0.250"
    assert rows["mask (sorted)"].text == "0.99 0.99 0.50 0.00"
    assert rows["source"].text == "x.h5 (5 per sample)" and rows["source"].tone == "mono"
    assert "warning" not in rows and "FID (Inception features)" not in rows  # settled; vectors have no FID row


def test_warnings_skipped_baselines_and_images():
    rows = result_rows({**BASE, "settled": False, "stop_reason": "max_steps", "phase": "hold", "m_active": 0, "baselines": None})
    warnings = [r.text for r in rows if r.label == "warning"]
    assert warnings == [unsettled_text({**BASE, "settled": False, "stop_reason": "max_steps", "phase": "hold"}), NO_DIMENSION_LEFT]
    assert "step limit (1,234 steps) in phase 'hold'" in warnings[0]
    assert any(r.label == "classical estimators" and r.text == "skipped (--no-baselines)" for r in rows)
    images = _rows(data_shape=[1, 8, 8], fid=None, fid_reason="no weights", kid_mean=None)
    assert images["FID (Inception features)"].text == "not computed: no weights"
    assert images["KID (mean ± std)"].text == "not computed (as FID)"
    assert "Frechet distance (pixels)" in images
    done = _rows(data_shape=[1, 8, 8], fid=12.3456, fid_samples=100, fid_reason=None, kid_mean=0.01, kid_std=0.002)
    assert done["FID (Inception features)"].text == "12.35 (100 images a side)"
    assert done["KID (mean ± std)"].text == "0.0100 ± 0.0020"


def test_old_and_empty_results_do_not_crash():
    assert result_rows({})[0].text == "n/a of capacity n/a"
    assert unsettled_text({}) is None  # a JSON from before the field does not say


def test_module_imports_no_torch_and_no_numpy():
    code = "import sys, latentdim.result, latentdim.report; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
