"""latentdim sweep: MaskAAE and the WAE at several capacities and seeds."""

import csv
import json
import statistics

import pytest
from clihelpers import one_error_line, run

from latentdim.errors import LatentdimError
from latentdim.sweep import SweepResult, SweepRun, parse_list, sweep

TINY = "synthetic:n=2,d=8,samples=200"
FAST = dict(max_steps=30, batch_size=32, width=16)


def test_parse_list():
    assert parse_list("4, 8,16", "capacities", 1) == [4, 8, 16]
    for text in ("", "4,x", "0,4", "4,4"):
        with pytest.raises(LatentdimError, match="--capacities"):
            parse_list(text, "capacities", 1)
    assert parse_list("0,1,2", "seeds", 0) == [0, 1, 2]


def test_summary_by_hand():
    def r(m, seed, model, m_a, fd):
        return SweepRun(m, seed, model, m_a, fd, 0.1, 0.0, 10, 1.0, True)

    result = SweepResult("x", [4, 8], [0, 1, 2], [
        r(4, 0, "MaskAAE", 4, 2.0), r(4, 1, "MaskAAE", 3, 4.0), r(4, 2, "MaskAAE", 4, 9.0), r(4, 0, "WAE", 4, 1.0),
        r(8, 0, "MaskAAE", 8, 1.0), r(8, 1, "MaskAAE", 9, None), r(8, 2, "MaskAAE", 10, 3.0), r(8, 0, "WAE", 8, 5.0),
    ])
    rows = {row["capacity"]: row for row in result.summary()}
    assert (rows[4]["m_active_median"], rows[4]["m_active_min"], rows[4]["m_active_max"]) == (4, 3, 4)
    assert rows[4]["fd_maskaae"] == 4.0 and rows[4]["fd_wae"] == 1.0
    assert rows[8]["m_active_median"] == 9 and rows[8]["fd_maskaae"] == 2.0  # the run without a distance is left out
    assert json.loads(json.dumps(result.to_dict()))["summary"][1]["m_active_max"] == 10


def test_sweep_runs_the_grid_as_estimate_would():
    from latentdim.api import estimate

    result = sweep(TINY, [2, 3], [0, 1], **FAST)
    assert [(r.capacity, r.seed, r.model) for r in result.runs] == [
        (m, s, model) for m in (2, 3) for s in (0, 1) for model in ("MaskAAE", "WAE")]
    one = estimate(TINY, 3, seed=1, use_mask=False, baselines=False, **FAST)
    wae = result.runs[-1]
    assert (wae.m_active, wae.frechet_distance, wae.steps) == (one.m_active, one.frechet_distance, one.steps)
    rows = result.summary()
    assert rows[0]["m_active_median"] == statistics.median(r.m_active for r in result.runs[:4] if r.model == "MaskAAE")
    assert len(sweep(TINY, [2], [0], wae=False, **FAST).runs) == 1
    with pytest.raises(LatentdimError, match="belong to one run"):
        sweep(TINY, [2], [0], out="x", **FAST)
    with pytest.raises(LatentdimError, match="jobs"):
        sweep(TINY, [2], [0], jobs=0, **FAST)


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one():
    one = sweep(TINY, [2, 3], [0], threads=1, **FAST)
    two = sweep(TINY, [2, 3], [0], jobs=2, **FAST)
    assert one.runs == [SweepRun(**{**vars(r), "seconds": o.seconds}) for r, o in zip(two.runs, one.runs)]


def test_cli_sweep_writes_csv_json_and_plot(tmp_path):
    result = run("sweep", TINY, "--capacities", "2,3", "--seeds", "0", "--max-steps", "30", "--batch-size", "32",
                 "--width", "16", "--out", tmp_path / "s", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[4/4] capacity 3 seed 0 WAE" in result.stderr and "capacity 2 seed 0 MaskAAE: training ..." in result.stderr
    assert "MaskAAE m_A" in result.stdout and "sweep.png" in result.stdout
    with open(tmp_path / "s" / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["capacity"], r["model"]) for r in rows] == [("2", "MaskAAE"), ("2", "WAE"), ("3", "MaskAAE"), ("3", "WAE")]
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["capacities"] == [2, 3]
    assert (tmp_path / "s" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_sweep_bad_capacities_is_one_line():
    assert "--capacities" in one_error_line(run("sweep", TINY, "--capacities", "4,x"))
