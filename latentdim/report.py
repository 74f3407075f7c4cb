"""One self-contained ``report.html`` per run: opens offline, in any browser, on a phone too.

Everything is inline: the CSS, the mask bar chart (SVG) and every picture (``data:`` URIs), so the
file can be mailed or archived on its own. There is no script and no external URL; a
Content-Security-Policy meta tag forbids loading anything from elsewhere.

Only the standard library is used (no torch), so a report can be rendered from a ``result.json``
alone::

    import json
    from latentdim.report import pictures_from_files, write_report

    result = json.load(open("runs/a/result.json"))
    write_report("runs/a/report.html", result, pictures_from_files(result), command="latentdim estimate ...")
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from latentdim.fileio import atomic_write
from latentdim.result import NA, Row, finite_floats, result_rows, unsettled_text
from latentdim.thresholds import ACTIVE_THRESHOLD, DECIDED_THRESHOLD

__all__ = ["CAPTIONS", "pictures_from_files", "render_report", "write_report"]


#: Known pictures, in the order the report shows them, with what each one shows.
CAPTIONS: dict[str, str] = {
    "samples": "Samples: images generated from random codes z ~ N(0, I) through the masked decoder.",
    "reconstructions": "Reconstructions: real images (the rows labelled real), each directly above its "
    "reconstruction.",
    "traversals": "Latent traversals: each row moves one active dimension from -2.5 to +2.5 (the column "
    "labels) with every other code at 0, decoded by the masked decoder; the dimensions that change the image "
    "most come first.",
    "losses_plot": "Training curves: the auto-encoder's reconstruction loss and the critic's W (means over "
    "the steps between recorded points), with the phases shaded (warm-up, closing, refine) and each elimination round's start as a thin line.",
    "closing_plot": "Closing rounds: the held-out reconstruction error after each round against the dimensions it "
    "left open (closing runs right to left); a round above its limit (the loss budget, dashed) was rolled back, "
    "and m_A is where the rounds stopped.",
    "mask_history_plot": "Mask history: the mask values over training, one line per latent dimension; "
    f"dimensions that end at or above {ACTIVE_THRESHOLD} are active.",
    "covariance_heatmap": "Covariance: the normalised absolute covariance of the encoder's codes, active dimensions only "
    "(near 0 off the diagonal means the active dimensions carry independent information).",
}

_NA = NA

_CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6570; --bg: #ffffff; --panel: #f4f6f8;
  --line: #d6dbe0; --accent: #1a7f37; --warn: #9a6700; --closed: #afb8c1; --undecided: #d4a72c; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9da7b1; --bg: #0d1117; --panel: #161b22; --line: #30363d;
    --accent: #3fb950; --warn: #d29922; --closed: #484f58; --undecided: #bb8009; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1rem; font-weight: 600; color: var(--muted); margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
header { background: var(--panel); border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; }
.big { font-size: 3.2rem; font-weight: 700; line-height: 1.1; margin: .25rem 0; }
.big .value { color: var(--accent); }
.big .of { font-size: 1.3rem; font-weight: 400; color: var(--muted); }
.sub { color: var(--muted); overflow-wrap: anywhere; margin: .25rem 0; }
.note { color: var(--warn); margin: .5rem 0 0; }
.mono, pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .875rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
table.result th { width: 34%; font-weight: 600; }
td { overflow-wrap: anywhere; }
table.compare { width: auto; margin: 0; }
table.compare th, table.compare td { width: auto; text-align: center; border: 1px solid var(--line); padding: .2rem .6rem; }
table.compare td.ma { color: var(--accent); font-weight: 700; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: .4rem; padding: .75rem;
  overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
img.pixels { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .35rem; }
svg.mask { display: block; width: 100%; height: auto; max-height: 14rem; }
svg.mask .active { fill: var(--accent); }
svg.mask .undecided { fill: var(--undecided); }
svg.mask .closed { fill: var(--closed); }
svg.mask .axis { stroke: var(--line); stroke-width: 1; }
svg.mask .threshold { stroke: var(--warn); stroke-width: 1; stroke-dasharray: 4 3; }
svg.mask text { fill: var(--muted); font-size: 11px; font-family: system-ui, sans-serif; }
.legend span { display: inline-block; width: .8em; height: .8em; margin: 0 .25em 0 .75em; vertical-align: -.05em; }
.legend .active { background: var(--accent); } .legend .undecided { background: var(--undecided); }
.legend .closed { background: var(--closed); }
details summary { cursor: pointer; margin: .5rem 0; }
ul.missing { color: var(--warn); }
footer { color: var(--muted); font-size: .85rem; margin: 2rem 0 1rem; }
"""


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    """Escaped text of any value; None is 'n/a'."""
    return _NA if value is None else escape(str(value), quote=True)


def _get(result: Mapping[str, Any], key: str) -> Any:
    return result.get(key) if isinstance(result, Mapping) else None


# --------------------------------------------------------------------------- pieces


def _header(result: Mapping[str, Any], title: str) -> str:
    m_active, capacity = _get(result, "m_active"), _get(result, "capacity")
    kind = "WAE-GP baseline (--no-mask)" if _get(result, "use_mask") is False else "MaskAAE"
    bits = [kind]
    if _get(result, "preset") is not None:
        bits.append(f"preset {_e(_get(result, 'preset'))}")
    if _get(result, "version") is not None:
        bits.append(f"latentdim {_e(_get(result, 'version'))}")
    notes = []
    stop, settled, phase = _get(result, "stop_reason"), result.get("settled"), result.get("phase")
    unsettled = unsettled_text(result)
    if unsettled is not None:
        notes.append(_e(unsettled[0].upper() + unsettled[1:]) + ".")
    elif settled is None and stop in ("max_steps", "interrupted", "diverged"):  # a result.json from before `settled`
        where = f" in phase '{_e(phase)}'" if phase else ""
        notes.append(f"Training ended with stop reason '{_e(stop)}'{where} before the mask settled: m_A may not be final.")
    undecided = _get(result, "undecided")
    if unsettled is None and isinstance(undecided, int) and not isinstance(undecided, bool) and undecided > 0:
        notes.append(f"{undecided} active dimension(s) undecided (mask value below {DECIDED_THRESHOLD}).")
    return (
        "<header>\n"
        f"<h1>{_e(title)}</h1>\n"
        f'<p class="big">m<sub>A</sub> = <span class="value" id="m-active">{_e(m_active)}</span> '
        f'<span class="of">of capacity {_e(capacity)}</span></p>\n'
        f'<p class="sub">source: <span class="mono">{_e(_get(result, "source"))}</span></p>\n'
        f'<p class="sub">{" · ".join(bits)}</p>\n'
        + "".join(f'<p class="note">{n}</p>\n' for n in notes)
        + "</header>\n"
    )


def _cell(row: Row) -> str:
    """A row's value as HTML: the comparison as a small table, its lead in bold (m_A) or mono (a name)."""
    if row.cells:
        head = "".join(f"<th>{'m<sub>A</sub>' if h == 'm_A' else _e(h)}</th>" for h, _ in row.cells)
        first, *rest = (v for _, v in row.cells)
        values = f'<td class="ma">{_e(first)}</td>' + "".join(f"<td>{_e(v)}</td>" for v in rest)
        return f'<table class="compare"><tr>{head}</tr><tr>{values}</tr></table>'
    if row.lead:
        lead = f'<span class="mono">{_e(row.lead)}</span>' if row.tone == "mono" else f"<strong>{_e(row.lead)}</strong>"
        return lead + _e(row.text[len(row.lead):])
    return _e(row.text)


def _result_table(result: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><th>{_e(row.label)}</th><td>{_cell(row)}</td></tr>\n" for row in result_rows(result, report=True))
    return f'<div class="scroll"><table class="result">\n{body}</table></div>\n'


def _mask_chart(result: Mapping[str, Any]) -> str:
    """The sorted mask values as an inline SVG bar chart, threshold dashed, plus the values as text."""
    raw = _get(result, "mask")
    values = sorted(finite_floats(raw), reverse=True)
    if not values:
        return f"<p>{_NA} (no mask values in this result)</p>\n"
    n = len(values)
    plot_h, top, left, right, bottom = 120.0, 8.0, 30.0, 4.0, 16.0
    bar = max(2.0, min(24.0, 600.0 / n))
    gap = bar * 0.2 if bar >= 4 else 0.0
    width = left + n * bar + right
    height = top + plot_h + bottom

    def y(v: float) -> float:
        return top + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    parts = [
        f'<svg class="mask" viewBox="0 0 {width:.1f} {height:.1f}" role="img" '
        f'aria-label="sorted mask values, {n} dimensions" preserveAspectRatio="xMinYMin meet">',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right:.1f}" y2="{top + plot_h}"/>',
        f'<text x="{left - 4}" y="{y(1.0) + 4:.1f}" text-anchor="end">1</text>',
        f'<text x="{left - 4}" y="{top + plot_h + 4:.1f}" text-anchor="end">0</text>',
    ]
    for i, v in enumerate(values):
        cls = "closed" if v < ACTIVE_THRESHOLD else ("undecided" if v < DECIDED_THRESHOLD else "active")
        h = max(top + plot_h - y(v), 0.5 if v > 0 else 0.0)
        x = left + i * bar + gap / 2
        parts.append(
            f'<rect class="{cls}" x="{x:.2f}" y="{top + plot_h - h:.2f}" width="{bar - gap:.2f}" height="{h:.2f}">'
            f"<title>{v:.4f}</title></rect>"
        )
    ty = y(ACTIVE_THRESHOLD)
    parts.append(f'<line class="threshold" x1="{left}" y1="{ty:.2f}" x2="{width - right:.1f}" y2="{ty:.2f}"/>')
    parts.append(f'<text x="{left - 4}" y="{ty + 4:.1f}" text-anchor="end">{ACTIVE_THRESHOLD}</text>')
    parts.append(f'<text x="{left}" y="{height - 3:.1f}">{n} dimensions, sorted</text>')
    parts.append("</svg>")
    active = sum(v >= ACTIVE_THRESHOLD for v in values)
    legend = (
        '<p class="legend sub"><span class="active"></span>active (&ge; 0.9)'
        '<span class="undecided"></span>undecided (0.1 to 0.9)'
        f'<span class="closed"></span>closed (&lt; {ACTIVE_THRESHOLD}); dashed line: threshold {ACTIVE_THRESHOLD}; '
        f"{active} of {n} at or above it</p>\n"
    )
    dropped = (len(raw) - n) if isinstance(raw, (list, tuple)) else 0
    text = " ".join(f"{v:.2f}" for v in values)
    extra = f" ({dropped} non-numeric value(s) left out)" if dropped else ""
    return "\n".join(parts) + "\n" + legend + f'<p class="mono sub">mask (sorted): {text}{extra}</p>\n'


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _figure(name: str, data: bytes, mime: str) -> str:
    caption = CAPTIONS.get(name, name.replace("_", " "))
    attrs, cls = "", ""
    size = _png_size(data)
    if size is not None and size[0] > 0 and size[1] > 0:
        w, h = size
        if name in ("samples", "reconstructions") and w < 480:
            # Small image grids (28x28 digits...) scale up by a whole factor to about 480 px, kept sharp.
            k = min(8, -(-480 // w))
            w, h, cls = w * k, h * k, ' class="pixels"'
        attrs = f' width="{w}" height="{h}"'
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<figure id="picture-{_e(name)}">\n'
        f'<img{cls} src="data:{mime};base64,{b64}"{attrs} alt="{_e(caption)}">\n'
        f"<figcaption>{_e(caption)}</figcaption>\n</figure>\n"
    )


def _pictures(pictures: Mapping[str, Any]) -> str:
    known = [k for k in CAPTIONS if k in pictures]
    names = known + [k for k in pictures if k not in CAPTIONS]
    figures, missing = [], []
    for name in names:
        path = pictures[name]
        if path is None:  # not produced by this run (e.g. no image grids for vectors)
            continue
        try:
            data = Path(path).read_bytes()
        except (OSError, TypeError, ValueError) as e:
            why = getattr(e, "strerror", None) or type(e).__name__
            shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
            missing.append(f'<li>{_e(name)}: <span class="mono">{_e(shown)}</span> is missing ({_e(why)})</li>')
            continue
        mime = next((m for sig, m in _SIGNATURES if data.startswith(sig)), None)
        if mime is None:
            missing.append(f"<li>{_e(name)}: <span class=\"mono\">{_e(os.fspath(path))}</span> is not a PNG image</li>")
            continue
        figures.append(_figure(str(name), data, mime))
    out = "".join(figures) if figures else "<p>No pictures for this run.</p>\n"
    if missing:
        out += "<p>Pictures that could not be embedded:</p>\n<ul class=\"missing\">\n" + "\n".join(missing) + "\n</ul>\n"
    return out


def _json_block(result: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(result, indent=2, default=str)
    except (TypeError, ValueError):  # circular or odd keys: still show something
        text = repr(result)
    return (
        "<details>\n<summary>All values (result.json)</summary>\n"
        f'<pre class="json">{escape(text, quote=True)}</pre>\n</details>\n'
    )


# --------------------------------------------------------------------------- public API


def pictures_from_files(result: Mapping[str, Any]) -> dict[str, str]:
    """The pictures a run wrote, from its ``result["files"]`` (name -> path): every ``.png`` entry,
    e.g. ``samples``, ``reconstructions``, ``mask_history_plot`` and ``covariance_heatmap``."""
    files = _get(result, "files")
    if not isinstance(files, Mapping):
        return {}
    return {
        str(k): os.fspath(v)
        for k, v in files.items()
        if isinstance(v, (str, os.PathLike)) and os.fspath(v).lower().endswith(".png")
    }


def render_report(
    result: Mapping[str, Any],
    pictures: Mapping[str, str | os.PathLike[str] | None],
    command: str | None = None,
    title: str = "latentdim report",
) -> str:
    """The report of one run as a single self-contained HTML page.

    Args:
        result: ``EstimateResult.to_dict()`` or a loaded ``result.json``. Missing keys (older
            versions) show as 'n/a'; so do None values. FID/KID rows appear when the dict has
            ``fid`` or ``kid_mean`` (``fid`` None with ``fid_reason`` shows "not computed: <reason>").
        pictures: name -> picture path, e.g. ``{"samples": ..., "reconstructions": ...,
            "mask_history_plot": ..., "covariance_heatmap": ...}`` (see :func:`pictures_from_files`).
            Each is embedded as a ``data:`` URI with a caption; a file that cannot be read is
            listed as missing; a None path is skipped.
        command: the command line that produced the run, shown verbatim; None shows 'n/a'.
        title: page title and header line.

    Returns:
        The HTML text: no script, no external URL, every value escaped.
    """
    if not isinstance(result, Mapping):
        result = {}
    pictures = pictures if isinstance(pictures, Mapping) else {}
    version = result.get("version")
    made_by = "latentdim" + ("" if version is None else f" {_e(version)}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + _header(result, title)
        + "<section>\n<h2>Result</h2>\n" + _result_table(result) + "</section>\n"
        + "<section>\n<h2>Mask</h2>\n" + _mask_chart(result) + "</section>\n"
        + "<section>\n<h2>Pictures</h2>\n" + _pictures(pictures) + "</section>\n"
        + "<section>\n<h2>Command</h2>\n"
        + f'<pre class="command">{_NA if command is None else escape(str(command), quote=True)}</pre>\n</section>\n'
        + "<section>\n<h2>All values</h2>\n" + _json_block(result) + "</section>\n"
        + f"<footer>Written by {made_by}. This page is self-contained and loads nothing from the network.</footer>\n"
        + "</main>\n</body>\n</html>\n"
    )


def write_report(
    path: str | os.PathLike[str],
    result: Mapping[str, Any],
    pictures: Mapping[str, str | os.PathLike[str] | None],
    command: str | None = None,
    title: str = "latentdim report",
) -> Path:
    """Writes :func:`render_report` to ``path`` atomically (a temporary file in the same folder,
    fsync, ``os.replace``): a crash leaves the old report or the new one, never half a page.
    The folder must exist. Returns ``path``."""
    path = Path(path)
    payload = render_report(result, pictures, command=command, title=title).encode("utf-8")
    return atomic_write(path, lambda f: f.write(payload))
