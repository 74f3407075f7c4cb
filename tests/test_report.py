"""latentdim.report: one self-contained, escaped, link-free report.html per run."""

import base64
import html
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from PIL import Image

from latentdim.report import CAPTIONS, pictures_from_files, render_report, write_report

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}
PICTURES = ("samples", "reconstructions", "mask_history_plot", "covariance_heatmap")


def fake_result(**changes) -> dict:
    mask = [0.999, 0.05, 1.0, 0.97, 0.002, 0.05, 0.5, 0.99, 0.0, 0.98, 0.01, 0.96, 0.03, 0.001, 1.0, 0.0]
    result = {
        "m_active": 8, "capacity": 16, "mask": mask,
        "active": [i for i, v in enumerate(mask) if v >= 0.1],
        "undecided": 1, "steps": 4321, "seconds": 98.765, "stop_reason": "settled",
        "reconstruction_error": 0.123456, "wasserstein": -0.0421337, "frechet_distance": 3.14159,
        "nac": 0.0777777, "precision": 0.8123, "recall": 0.7456,
        "baselines": {"twonn": 7.891, "mle": 8.234, "lpca": 9.0},
        "seed": 11, "preset": "mnist", "data_shape": [1, 28, 28], "source": "/data/digits",
        "skipped_files": 3, "version": "0.1.0", "device": "cpu", "schedule": "latentdim", "use_mask": True,
        "files": {"result": "/out/result.json"},
        "fid": 12.3456, "kid_mean": 0.01234, "kid_std": 0.00056, "fid_reason": None,
    }
    result.update(changes)
    return result


def make_pngs(folder) -> dict:
    paths = {}
    for i, name in enumerate(PICTURES):
        path = folder / f"{name}.png"
        Image.new("RGB", (6 + i, 5), (40 * i, 200, 17 * i)).save(path)
        paths[name] = path
    return paths


class Collect(HTMLParser):
    """Tags, attributes and text of a page; fails on anything the parser itself flags."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <line .../> in the SVG
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def error(self, message):  # pragma: no cover - older Pythons only
        raise AssertionError(message)


def parse(page: str) -> Collect:
    p = Collect()
    p.feed(page)
    p.close()
    assert p.stack == [], f"unclosed: {p.stack}"
    return p


def text_of(page: str) -> str:
    return " ".join(" ".join(parse(page).text).split())


def test_every_picture_embedded_byte_for_byte_with_its_caption(tmp_path):
    paths = make_pngs(tmp_path)
    page = render_report(fake_result(), paths)
    srcs = [v for tag, k, v in parse(page).attrs if tag == "img" and k == "src"]
    assert len(srcs) == len(PICTURES)
    decoded = [base64.b64decode(s.split(",", 1)[1], validate=True) for s in srcs]
    for i, name in enumerate(PICTURES):  # in the documented order
        assert srcs[i].startswith("data:image/png;base64,")
        assert decoded[i] == paths[name].read_bytes()
        assert html.escape(CAPTIONS[name]) in page
    text = text_of(page)
    assert "generated" in text and "real images" in text and "one line per latent dimension" in text
    assert "normalised absolute covariance of the encoder's codes, active dimensions" in text


def test_values_shown_formatted_and_json_in_details(tmp_path):
    result = fake_result()
    page = render_report(result, {})
    text = text_of(page)
    assert 'id="m-active">8<' in page and "of capacity 16" in text
    for value in ("7.89", "8.23", "9.00", "0.1235", "-0.0421", "3.1416", "0.0778", "0.812", "0.746",
                  "12.35", "0.0123 ± 0.0006", "4321 (settled) in 98.8 s on cpu", "preset mnist, schedule latentdim",
                  "1x28x28 per sample", "3 unreadable image files skipped", "Frechet distance (pixels)"):
        assert value in text, value
    assert "m_A | TwoNN | MLE | lPCA" in text
    # sorted mask, as the CLI prints it
    assert " ".join(f"{v:.2f}" for v in sorted(result["mask"], reverse=True)) in text
    # the bar chart: one rect per dimension, inline SVG, three classes
    assert page.count("<rect ") == 16 and "<svg" in page
    assert page.count('<rect class="active"') == 7 and page.count('<rect class="undecided"') == 1
    # full JSON, escaped, indent 2, inside <details><pre>
    m = re.search(r"<details>.*?<pre class=\"json\">(.*?)</pre>\s*</details>", page, re.S)
    assert m is not None
    assert json.loads(html.unescape(m.group(1))) == result
    assert html.unescape(m.group(1)) == json.dumps(result, indent=2)


def test_no_script_no_external_urls_and_parses(tmp_path):
    page = render_report(fake_result(), make_pngs(tmp_path), command="latentdim estimate synthetic:n=8")
    parsed = parse(page)
    assert "<script" not in page.lower() and "script" not in parsed.tags
    assert "http://" not in page and "https://" not in page and "//" not in "".join(v or "" for _, _, v in parsed.attrs)
    for tag, key, value in parsed.attrs:
        if key in ("src", "href", "xlink:href", "action", "poster", "srcset"):
            assert value.startswith("data:image/"), (tag, key, value[:40])
    assert "a" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    assert parsed.tags[0] == "html" and "style" in parsed.tags
    assert 'name="viewport"' in page


def test_escapes_source_command_title_and_values(tmp_path):
    evil = "a<b>&c"
    result = fake_result(source=evil, stop_reason="<i>x</i>", baselines={"twonn": "<u>", "mle": None, "lpca": 1.0})
    page = render_report(result, {}, command='latentdim estimate "a<b>&c" --out </pre><script>', title="<t>")
    assert evil not in page and "<b>" not in page and "<i>" not in page and "<u>" not in page
    assert "a&lt;b&gt;&amp;c" in page
    assert "<script" not in page and "</pre><script>" not in page
    assert "latentdim estimate &quot;a&lt;b&gt;&amp;c&quot; --out &lt;/pre&gt;&lt;script&gt;" in page
    assert "<title>&lt;t&gt;</title>" in page
    text = text_of(page)
    assert 'latentdim estimate "a<b>&c" --out </pre><script>' in text  # shown as typed
    assert "a<b>&c" in text
    assert "<td>&lt;u&gt;</td><td>n/a</td><td>1.00</td>" in page  # odd baselines: shown as they are


def test_none_values_render_na(tmp_path):
    result = fake_result(frechet_distance=None, nac=None, precision=None, recall=None, undecided=None, seed=None)
    page = render_report(result, {})
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page))
    assert rows["Frechet distance (pixels)"] == "n/a"
    assert rows["NAC (active dims)"] == "n/a"
    assert rows["precision / recall (k = 3)"] == "n/a / n/a"
    assert rows["undecided dimensions"] == "n/a" and rows["seed"] == "n/a"
    assert "<pre class=\"command\">n/a</pre>" in page  # no command given
    assert "classical estimators" not in page
    page = render_report(fake_result(baselines=None), {})
    assert "skipped (--no-baselines)" in page


def test_fid_none_with_reason_and_no_fid_keys(tmp_path):
    page = render_report(fake_result(fid=None, kid_mean=None, kid_std=None, fid_reason="needs torch-fidelity <2>"), {})
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page))
    assert rows["FID (Inception features)"] == "not computed: needs torch-fidelity &lt;2&gt;"
    assert rows["KID (mean ± std)"] == "not computed (as FID)"
    old = fake_result()
    for key in ("fid", "kid_mean", "kid_std", "fid_reason"):
        del old[key]
    assert "FID" not in render_report(old, {})


def test_missing_picture_listed_not_raised(tmp_path):
    paths = make_pngs(tmp_path)
    paths["samples"].unlink()
    (tmp_path / "junk.png").write_bytes(b"not a png")
    paths["extra"] = tmp_path / "junk.png"
    paths["none"] = None  # not produced: skipped silently
    page = render_report(fake_result(), paths)
    assert page.count("<img ") == 3
    missing = page.split("could not be embedded", 1)[1]
    assert "samples" in missing and html.escape(str(paths["samples"])) in missing and "is missing" in missing
    assert "extra" in missing and "is not a PNG image" in missing
    assert "none:" not in missing


def test_old_and_empty_results_do_not_crash(tmp_path):
    minimal = {"m_active": 3, "capacity": 8}
    page = render_report(minimal, {})
    assert 'id="m-active">3<' in page and "n/a" in page
    parse(page)
    for odd in ({}, {"mask": ["x", None, float("nan"), 0.5], "data_shape": None, "baselines": "?", "seconds": "slow"},
                {"mask": [], "skipped_files": None, "fid": None}):
        parse(render_report(odd, {"samples": tmp_path / "nope.png"}))


def test_vectors_say_data_space_and_warn_when_not_settled():
    page = render_report(fake_result(data_shape=[16], stop_reason="max_steps", skipped_files=0, undecided=2), {})
    text = text_of(page)
    assert "Frechet distance (data space)" in text and "skipped files" not in text
    assert "stop reason 'max_steps'" in text and "2 active dimension(s) undecided" in text


def test_write_report_atomic_and_parses(tmp_path):
    paths = make_pngs(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    target = out / "report.html"
    target.write_text("old")
    written = write_report(target, fake_result(source="a<b>&c"), paths, command="latentdim estimate x")
    assert written == target
    assert sorted(os.listdir(out)) == ["report.html"]  # no temp file left
    page = target.read_text(encoding="utf-8")
    assert page == render_report(fake_result(source="a<b>&c"), paths, command="latentdim estimate x")
    parsed = parse(page)
    assert parsed.tags.count("img") == 4 and "details" in parsed.tags and "pre" in parsed.tags
    assert target.stat().st_mode & 0o444 == 0o444


def test_write_report_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "report.html"

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_report(target, fake_result(), {})
    assert os.listdir(tmp_path) == []


def test_pictures_from_files():
    files = {"result": "/o/result.json", "samples": "/o/samples.png", "covariance": "/o/covariance.npy",
             "covariance_heatmap": "/o/covariance.png", "mask_history_plot": "/o/mask_history.png"}
    assert pictures_from_files({"files": files}) == {
        "samples": "/o/samples.png", "covariance_heatmap": "/o/covariance.png", "mask_history_plot": "/o/mask_history.png"}
    assert pictures_from_files({}) == {}


def test_module_does_not_import_torch():
    code = "import sys, latentdim.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.strip() == "False"


def test_closing_rounds_counted_with_the_undone_ones():
    rounds = [{"step": 10, "open": 8, "k": 2, "kept": True}, {"step": 20, "open": 6, "k": 1, "kept": False},
              {"step": 30, "open": 6, "k": 1, "kept": True}, {"step": 40, "open": 5, "k": 1, "kept": False}]
    assert "closing rounds 4 (2 undone: over the loss budget)" in text_of(render_report(fake_result(closing_rounds=rounds), {}))
    assert "closing rounds" not in text_of(render_report(fake_result(closing_rounds=[]), {}))
    assert "closing rounds" not in text_of(render_report(fake_result(), {}))  # results written before the field


def _round(kept, error, dims=(3,), limit=1.0, allowance=0.1):
    return {"k": len(dims), "dims": list(dims), "error": error, "limit": limit, "allowance": allowance, "kept": kept}


def test_closing_margin_is_the_cheapest_refused_removal_in_allowances():
    from latentdim.result import closing_margin, closing_margin_text

    # two refused rounds of one after the last kept round: 0.05 and 0.3 over an allowance of 0.1
    rounds = [_round(True, 0.9), _round(False, 1.2, dims=(1, 2)), _round(True, 0.95),
              _round(False, 1.03), _round(False, 1.005)]
    assert closing_margin(rounds) == pytest.approx(0.05)
    assert closing_margin(rounds[:-1]) == pytest.approx(0.3)
    # refused rounds before the last kept one, or of several dims, do not count
    assert closing_margin(rounds[:3]) is None
    assert closing_margin(rounds[:2]) is None
    assert closing_margin([_round(False, 1.5, limit=1.0, allowance=0.2)]) == pytest.approx(2.5)
    # rounds recorded before the allowance was, or with none: no margin
    old = [{k: v for k, v in r.items() if k != "allowance"} for r in rounds]
    assert closing_margin(old) is None
    assert closing_margin([_round(False, 1.2, allowance=0.0)]) is None
    assert closing_margin([]) is None and closing_margin(None) is None

    assert closing_margin_text(2.5).startswith("clear: one dimension fewer went 2.5 allowances")
    assert closing_margin_text(0.05).startswith("soft: one dimension fewer went only 0.05 of an allowance")
    assert closing_margin_text(None) is None


def test_report_shows_the_gap_below_m_a():
    assert "gap below m_A clear: one dimension fewer went 4.2 allowances" in text_of(
        render_report(fake_result(closing_margin=4.2), {}))
    assert "gap below m_A" not in text_of(render_report(fake_result(), {}))


def test_report_names_the_skipped_files():
    text = text_of(render_report(fake_result(skipped_files=7, skipped_examples=["a/x.png: truncated", "y.jpg: <bad>"]), {}))
    assert ("skipped files 7 unreadable image files skipped (--strict makes this an error): "
            "a/x.png: truncated; y.jpg: <bad>; and 5 more") in text
    text = text_of(render_report(fake_result(skipped_files=1, skipped_examples=["x.png: truncated"]), {}))
    assert "skipped (--strict makes this an error): x.png: truncated" in text and "truncated; and" not in text
    assert "skipped files" not in text_of(render_report(fake_result(skipped_files=0), {}))


def test_an_undefined_baseline_shows_why():
    result = fake_result(baselines={"twonn": None, "mle": 2.01, "lpca": 2.0},
                         baseline_errors={"twonn": "TwoNN is undefined: every point's <two> neighbours are equidistant"})
    page = render_report(result, {})
    assert "<td>undefined (every point&#x27;s &lt;two&gt; neighbours are equidistant)</td><td>2.01</td><td>2.00</td>" in page
