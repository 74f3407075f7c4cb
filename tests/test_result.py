"""result.result_rows: the rows the command line's table and report.html both show."""

import subprocess
import sys

from latentdim.result import NO_DIMENSION_LEFT, result_rows, unsettled_text, verification_margin, verification_text

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


#: A fresh verification that went from elimination's 5 to 3: limit 0.002 + 0.01 * 0.998 = 0.01198
CHECK = [{"k": 5, "error": 0.002, "limit": None, "allowance": None, "kept": True},
         {"k": 4, "error": 0.003, "limit": 0.01198, "allowance": 0.00998, "kept": True},
         {"k": 3, "error": 0.005, "limit": 0.01198, "allowance": 0.00998, "kept": True},
         {"k": 2, "error": 0.04692, "limit": 0.01198, "allowance": 0.00998, "kept": False}]


def test_fresh_verification_words_and_margin():
    assert verification_text(CHECK) == "elimination's 5 -> 3 (4, 3 kept; 2 refused: error 0.0469 > limit 0.0120)"
    # (0.04692 - 0.01198) / 0.00998 = 3.5 allowances over
    assert abs(verification_margin(CHECK) - 3.5010) < 1e-3
    none_fewer = [CHECK[0], {**CHECK[1], "kept": False, "error": 0.0125}]
    assert verification_text(none_fewer) == "elimination's 5 kept (4 refused: error 0.0125 > limit 0.0120)"
    assert abs(verification_margin(none_fewer) - (0.0125 - 0.01198) / 0.00998) < 1e-9
    down_to_one = [CHECK[0], {**CHECK[1], "k": 1}]  # nothing refused: no gap to report
    assert verification_text(down_to_one) == "elimination's 5 -> 1 (1 kept)"
    assert verification_margin(down_to_one) is None
    assert verification_text([]) is None and verification_margin(None) is None
    assert _rows(verification=CHECK)["fresh verification"].text == verification_text(CHECK)
    assert "fresh verification" not in _rows()
    # m + 1 not needed (error 0.0019, limit 0.0019 + 0.01 * 0.9981 = 0.011881 > 0.002): words as before
    not_up = [CHECK[0], {"k": 6, "up": True, "error": 0.0019, "limit": 0.011881, "allowance": 0.009981,
                         "below": 0.002, "kept": False}] + CHECK[1:]
    assert verification_text(not_up) == verification_text(CHECK)
    assert verification_margin(not_up) == verification_margin(CHECK)


#: A fresh verification that went up from elimination's 7 to 8: 8's limit 0.0216 + 0.01 * 0.9784
#: = 0.031384; 7's error 0.0826 is over it; 9's limit 0.0215 + 0.01 * 0.9785 = 0.031285, 8's
#: 0.0216 is not.
UP = [{"k": 7, "error": 0.0826, "limit": None, "allowance": None, "kept": True},
      {"k": 8, "up": True, "error": 0.0216, "limit": 0.031384, "allowance": 0.009784, "below": 0.0826, "kept": True},
      {"k": 9, "up": True, "error": 0.0215, "limit": 0.031285, "allowance": 0.009785, "below": 0.0216, "kept": False}]


def test_fresh_verification_that_went_up_words_and_margin():
    assert verification_text(UP) == "elimination's 7 -> 8 (8 needed: 7's error 0.0826 > limit 0.0314)"
    # one code fewer than 8 went (0.0826 - 0.031384) / 0.009784 = 5.23 allowances over
    assert abs(verification_margin(UP) - 5.2346) < 1e-3


def test_old_and_empty_results_do_not_crash():
    assert result_rows({})[0].text == "n/a of capacity n/a"
    assert unsettled_text({}) is None  # a JSON from before the field does not say


def test_module_imports_no_torch_and_no_numpy():
    code = "import sys, latentdim.result, latentdim.report; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
