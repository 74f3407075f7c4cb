"""What an estimate found: :class:`EstimateResult` (the JSON, the model's encode / decode /
sample), the words for what it means, and its rows (:func:`result_rows`), which the command line's
table and ``report.html`` both render.

Only the standard library is imported here (numpy and torch when a model is used), so the report
can render a ``result.json`` where torch is not installed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from latentdim.errors import LatentdimError

if TYPE_CHECKING:
    import numpy as np

    from latentdim.data import Standardiser
    from latentdim.models import MaskAAE


#: :func:`closing_margin` at or above this many allowances: a clear gap below m_A. Removing a
#: true factor of rendered images cost 1.4-17 allowances; Fashion-MNIST and the rendered count that
#: came out one too high, 0.01-0.49 (docs/log/mask-dynamics.md, "How sharp the count is").
CLEAR_MARGIN = 1.0
#: The classical estimators in the order the table and the report show them.
BASELINE_NAMES = ("twonn", "mle", "lpca")
NA = "n/a"


#: What the table and a warning say when the mask ended with no dimension open, which only the
#: closing pressure (--loss-budget 0) can do: elimination never removes the last dimension.
NO_DIMENSION_LEFT = (
    "no dimension was left open: the closing pressure closed every one, which says nothing about the "
    "data's dimension; run with the default loss budget (closing in verified rounds)"
)


class EstimateWarning(UserWarning):
    """m_A that is not an answer: nothing left open, or training that did not settle. The command
    line shows these in its table instead."""


def unsettled_text(result: EstimateResult | Mapping[str, Any]) -> str | None:
    """Why ``result`` (or its JSON) is not an answer yet (None when it settled, or when a JSON
    from an earlier version does not say), with what to do about it."""
    g = _getter(result)
    if g("settled") is not False:
        return None
    stop, steps, undecided = g("stop_reason"), g("steps"), g("undecided")
    how = f"stopped at the step limit ({steps:,} steps)" if stop == "max_steps" and isinstance(steps, int) else stop
    undecided_text = f", {undecided} dimension(s) undecided" if undecided else ""
    again = " (a larger max_steps with resume continues it)" if stop == "max_steps" else ""
    return f"not settled: {how} in phase '{g('phase')}'{undecided_text}; m_A may still change{again}"


def _getter(result: Any) -> Any:
    if isinstance(result, Mapping):
        return result.get
    return lambda key: getattr(result, key, None)


@dataclass
class EstimateResult:
    """What one ``estimate`` run found. ``to_dict`` gives the JSON the CLI prints."""

    m_active: int  # number of mask values >= 0.1: the estimated latent dimension
    capacity: int  # latent size m the model started with
    mask: list[float]  # final mask values mu, one per latent dimension
    active: list[int]  # indices of the active dimensions
    undecided: int  # active dims with mu < 0.9 (0 when the mask has settled)
    steps: int  # training steps run
    seconds: float  # wall time of training
    stop_reason: str  # "settled", "max_steps", "interrupted" or "diverged"
    reconstruction_error: float  # on up to 5,000 training samples, in the loss's units
    wasserstein: float  # the critic's W estimate between encoded data and the masked prior
    frechet_distance: float | None  # generated vs real, data space (SPEC §7)
    nac: float | None  # normalised absolute covariance over active dims (SPEC §7)
    fid: float | None  # images: FID of generated vs training images (Inception pool3); None: see fid_reason
    kid_mean: float | None  # images: KID (same features), mean over subsets
    kid_std: float | None
    fid_samples: int  # images per side used for FID / KID (0 when not computed)
    fid_reason: str | None  # why fid is None (vectors, or the Inception weights are missing)
    precision: float | None  # improved precision (k = 3) of generated vs real, same space as the Frechet distance
    recall: float | None  # improved recall (k = 3) of generated vs real
    baselines: dict[str, float | None] | None  # classical estimates {"twonn", "mle", "lpca"}; None when skipped; a value is None when undefined (see baseline_errors)
    seed: int
    preset: str
    data_shape: list[int]  # shape of one sample as the model sees it: [d] or [C, H, W]
    source: str
    skipped_files: int  # unreadable image files skipped while loading (image folders; 0 otherwise)
    version: str
    device: str
    schedule: str  # "latentdim" or "reference"
    use_mask: bool  # False for the --no-mask (WAE-GP) baseline
    covariance: np.ndarray | None = field(default=None, repr=False)  # full normalised |cov| (m, m)
    history_steps: np.ndarray | None = field(default=None, repr=False)  # (T,)
    history_mask: np.ndarray | None = field(default=None, repr=False)  # (T, m)
    # the training curves (:func:`latentdim.training.curves_array`): steps, rec, w and phase, (T,) each
    curves: dict[str, np.ndarray] | None = field(default=None, repr=False)
    files: dict[str, str] = field(default_factory=dict)  # what was written to ``out``: name -> path
    # images (elimination): one entry per round: step, open dims, k, dims tried, their ablation
    # costs, the held-out error after the hold, the budget's limit, and whether it was kept
    closing_rounds: list[dict[str, Any]] = field(default_factory=list)
    # how far over the loss budget the refused last removal went, in allowances of it (>= 1: a
    # clear gap below m_A; a fraction: nearby counts fit about as well): the fresh verification's
    # refused size when it ran, else elimination's last refused round; None otherwise
    closing_margin: float | None = None
    # vectors: the fresh verification after elimination (training/verify.py), one entry per code
    # size tried from elimination's m down: k, the fresh held-out error (a fraction of the
    # variance), the limit it had to meet (None for m itself) and whether it was kept; m_A is the
    # last kept k. [] when it did not run (images, the WAE baseline, --no-verify, a run that
    # stopped before elimination ended)
    verification: list[dict[str, Any]] = field(default_factory=list)
    # image folders: the first few skipped files, "relative/path: why" (skipped_files counts all)
    skipped_examples: list[str] = field(default_factory=list)
    # classical estimators undefined on this data: name -> why (its value in baselines is None)
    baseline_errors: dict[str, str] = field(default_factory=dict)
    # False when training ended before the mask settled (the --max-steps limit) or with dims
    # undecided: m_A is then a snapshot, not an answer (see ``phase`` and :func:`unsettled_text`)
    settled: bool = True
    phase: str = ""  # the schedule's phase when training ended: warmup, close, hold, polish, refine, ...
    processes: int = 1  # ranks that trained the model together (torchrun, docs/design.md); 1: one process
    # the trained MaskAAE (torch module, eval mode) and the vectors' standardiser: what encode,
    # decode and sample use; not part of the JSON
    model: MaskAAE | None = field(default=None, repr=False, compare=False)
    standardiser: Standardiser | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (arrays and the model excluded)."""
        skip = {"covariance", "history_steps", "history_mask", "curves", "model", "standardiser"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def _fitted(self) -> MaskAAE:
        if self.model is None:
            raise LatentdimError("this result holds no model (it was read back from JSON); run estimate again")
        return self.model

    def encode(self, x: Any) -> np.ndarray:
        """The codes of ``x`` (samples in the units and shape the model was trained on) on the
        active dimensions: an (N, m_A) float32 array on the scale of the prior N(0, I), so
        ``decode(encode(x))`` reconstructs ``x``."""
        import numpy as np
        import torch

        from latentdim.data import from_array
        from latentdim.data.vectors import as_array
        from latentdim.models import chunked
        from latentdim.training import model_input

        model = self._fitted()
        device = next(model.parameters()).device
        if self.standardiser is not None:
            rows = self.standardiser.transform(from_array(x, "x").x)
        else:
            images = as_array(x, "x")
            if images.shape[1:] != tuple(self.data_shape):
                raise LatentdimError(f"x has images of shape {images.shape[1:]}; this model takes {tuple(self.data_shape)} (N, C, H, W)")
            rows = images
        with torch.no_grad():
            codes = chunked(model.encoder, model_input(torch.as_tensor(np.ascontiguousarray(rows)).to(device)))
        return codes[:, self.active].cpu().numpy()  # unmasked, like the generator's input z ~ N(0, I)

    def decode(self, z: Any) -> np.ndarray:
        """Data from codes ``z`` (N, m_A) on the active dimensions: vectors in the data's units,
        images (N, C, H, W) in [0, 1]. This is the exported generator (:mod:`latentdim.export`),
        run in torch on the CPU."""
        import numpy as np
        import torch

        from latentdim.export import masked_generator, output_head

        model = self._fitted()
        codes = np.asarray(z, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != len(self.active):
            raise LatentdimError(f"z has shape {codes.shape}; it needs (N, {len(self.active)}), one value per active dimension")
        shape = tuple(self.data_shape)
        if self.standardiser is None:  # images: the decoder gives logits (SPEC §3)
            head, *_ = output_head("bce", shape, None, uint8=False)
        else:
            head, *_ = output_head("mse", shape, self.standardiser.to_dict(), uint8=False)
        with torch.no_grad():
            generator = masked_generator(model.decoder, model.mask(), shape, head)
            return generator(torch.from_numpy(np.ascontiguousarray(codes))).numpy()

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new samples from the generator: z ~ N(0, I) on the active dimensions, decoded."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise LatentdimError(f"n must be a non-negative integer, got {n!r}")
        import numpy as np

        z = np.random.default_rng(seed).standard_normal((n, len(self.active))).astype(np.float32)
        return self.decode(z)


def closing_rounds_text(rounds: Any) -> str | None:
    """The summary of an elimination's rounds, "N (M undone: over the loss budget)"; None when
    there were none (vectors, or a run without a loss budget). Shared by the CLI's table."""
    if not isinstance(rounds, list) or not rounds:
        return None
    undone = sum(1 for r in rounds if isinstance(r, Mapping) and r.get("kept") is False)
    return f"{len(rounds)} ({undone} undone: over the loss budget)"


def closing_margin(rounds: Any) -> float | None:
    """How sharply the count is determined: over the rounds of one dimension refused after the
    last kept round (the ones that ended closing), the smallest excess of the held-out error over
    the budget's limit, in allowances (the limit minus the best error). Several allowances: one
    dimension fewer clearly loses information (a gap); a fraction: the error creeps up a little
    per dimension and nearby counts fit about as well. None when closing did not end on refused
    rounds of one (vectors, no loss budget, a step limit, or rounds recorded before the field)."""
    if not isinstance(rounds, list):
        return None
    tail = []
    for r in reversed(rounds):
        if not isinstance(r, Mapping) or r.get("kept") is not False:
            break
        tail.append(r)
    excess = []
    for r in tail:
        err, limit, allowance = (finite_floats([r.get(k)]) for k in ("error", "limit", "allowance"))
        if len(r.get("dims") or []) == 1 and err and limit and allowance and allowance[0] > 0:
            excess.append((err[0] - limit[0]) / allowance[0])
    return min(excess) if excess else None


def verification_margin(records: Any) -> float | None:
    """:func:`closing_margin` for a fresh verification: how far one code fewer than its count went
    over its limit, in allowances (the last size needed on the way up, else the size refused on
    the way down); None when there is no such size (one code reached) or it did not run."""
    if not isinstance(records, list) or not records or not all(isinstance(r, Mapping) for r in records):
        return None
    ups = [r for r in records if r.get("up") and r.get("kept")]
    if ups:  # the error of one code fewer than the last size needed
        record, over = ups[-1], "below"
    else:  # the size refused on the way down, if one was
        record, over = [r for r in records if not r.get("up")][-1], "error"
        if record.get("kept") is not False:
            return None
    err, limit, allowance = (finite_floats([record.get(k)]) for k in (over, "limit", "allowance"))
    if not (err and limit and allowance) or allowance[0] <= 0:
        return None
    return (err[0] - limit[0]) / allowance[0]


def verification_text(records: Any) -> str | None:
    """The table's words for a fresh verification: "elimination's 7 -> 4 (6, 5, 4 kept; 3
    refused: error 0.0823 > limit 0.0207)", "elimination's 2 kept (1 refused: ...)", or, when it
    went up, "elimination's 7 -> 8 (8 needed: 7's error 0.0826 > limit 0.0314)"; None when it
    did not run."""
    if not isinstance(records, list) or not records or not all(isinstance(r, Mapping) for r in records):
        return None
    m = records[0].get("k")
    ups = [r for r in records if r.get("up") and r.get("kept")]
    if ups:
        needed = "; ".join(f"{r.get('k')} needed: {int(r.get('k')) - 1}'s error {fmt(r.get('below'), '.4f')} > "
                           f"limit {fmt(r.get('limit'), '.4f')}" for r in ups)
        return f"elimination's {m} -> {ups[-1].get('k')} ({needed})"
    down = [r for r in records if not r.get("up")]
    kept = [r.get("k") for r in down[1:] if r.get("kept")]
    last = down[-1]
    refused = (f"{last.get('k')} refused: error {fmt(last.get('error'), '.4f')} > limit {fmt(last.get('limit'), '.4f')}"
               if last.get("kept") is False else "")
    if not kept:
        return f"elimination's {m} kept" + (f" ({refused})" if refused else "")
    inside = ", ".join(map(str, kept)) + " kept" + (f"; {refused}" if refused else "")
    return f"elimination's {m} -> {kept[-1]} ({inside})"


def closing_margin_text(margin: Any) -> str | None:
    """The CLI's and the report's words for :func:`closing_margin`; None when there is none."""
    value = finite_floats([margin])
    if not value:
        return None
    m = value[0]
    if m >= CLEAR_MARGIN:
        return f"clear: one dimension fewer went {m:.1f} allowances over the loss budget"
    return (f"soft: one dimension fewer went only {m:.2f} of an allowance over the loss budget, so "
            "counts a few dimensions either side fit the data about as well")


def baseline_undefined_text(name: str, errors: Any) -> str | None:
    """The CLI's and the report's words for a classical estimator that is undefined on the data,
    "undefined (why)"; None when ``errors`` (a run's ``baseline_errors``) has no entry for it."""
    if not isinstance(errors, Mapping) or errors.get(name) is None:
        return None
    why = str(errors[name])
    # "TwoNN is undefined: every point's ..." -> "undefined (every point's ...)"
    return f"undefined ({why.split(' is undefined: ', 1)[-1]})"


def skipped_text(count: Any, examples: Any) -> str | None:
    """The CLI's and the report's words for the unreadable image files a run skipped, naming the
    first few; None when none were skipped."""
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        return None
    text = f"{count} unreadable image files skipped (--strict makes this an error)"
    named = [str(e) for e in examples] if isinstance(examples, (list, tuple)) else []
    if named:
        more = count - len(named)
        text += ": " + "; ".join(named) + (f"; and {more} more" if more > 0 else "")
    return text


def finite_floats(values: Any) -> list[float]:
    """The finite numbers in ``values`` (anything else dropped)."""
    if not isinstance(values, (list, tuple)):
        return []
    out = []
    for v in values:
        if isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def fmt(value: Any, spec: str) -> str:
    """``format(value, spec)``; None is 'n/a'; a value that is not a number shows as it is."""
    if value is None:
        return NA
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # a numeric string, e.g. from a hand-edited result.json
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _text(value: Any) -> str:
    return NA if value is None else str(value)


@dataclass(frozen=True)
class Row:
    """One line of the result table: a label and plain text. ``lead`` is the start of ``text``
    to emphasise (m_A, a source's name); ``tone`` says how: "answer" (m_A), "warn" (a warning),
    "mono" (a name or path) or "" (plain). The comparison row also has its ``cells`` (header,
    value) for m_A and the classical estimators."""

    label: str
    text: str
    tone: str = ""
    cells: tuple[tuple[str, str], ...] = ()
    lead: str = ""


def _compare_row(result: Mapping[str, Any]) -> Row:
    label = "m_A | TwoNN | MLE | lPCA"
    b = result.get("baselines")
    if "baselines" in result and b is None:
        return Row("classical estimators", "skipped (--no-baselines)")
    if not isinstance(b, Mapping):
        return Row(label, _text(b))
    errors = result.get("baseline_errors")
    values = [fmt(b.get(k), ".2f") if (why := baseline_undefined_text(k, errors)) is None else why for k in BASELINE_NAMES]
    cells = tuple(zip(("m_A", "TwoNN", "MLE", "lPCA"), (_text(result.get("m_active")), *values)))
    return Row(label, " | ".join(v for _, v in cells), "answer", cells, lead=cells[0][1])


def _fid_rows(result: Mapping[str, Any]) -> list[Row]:
    """FID and KID: images only (vectors get the data-space Frechet distance)."""
    reason, fid = result.get("fid_reason"), result.get("fid")
    not_computed = f"not computed: {reason}" if reason is not None else NA
    kid_mean, kid_std = result.get("kid_mean"), result.get("kid_std")
    if kid_mean is None:  # for the same reason as FID when that was not computed either
        kid = "not computed (as FID)" if fid is None and reason is not None else not_computed
    else:
        kid = fmt(kid_mean, ".4f") + ("" if kid_std is None else f" ± {fmt(kid_std, '.4f')}")
    samples = result.get("fid_samples")
    fid_text = not_computed if fid is None else fmt(fid, ".2f") + (f" ({samples} images a side)" if samples else "")
    return [Row("FID (Inception features)", fid_text, "warn" if fid is None else ""), Row("KID (mean ± std)", kid)]


def result_rows(result: Mapping[str, Any], report: bool = False) -> list[Row]:
    """The rows of a result (:meth:`EstimateResult.to_dict`, or a ``result.json`` from any
    version: missing fields show as 'n/a' or are left out), in the order both tables show them.
    ``report``: without the warnings and the sorted mask, which the report shows in its header
    and its mask chart."""
    g = result.get
    m_active = _text(g("m_active"))
    rows = [Row("active dimensions m_A", f"{m_active} of capacity {_text(g('capacity'))}", "answer", lead=m_active)]
    unsettled = unsettled_text(result)
    if unsettled is not None and not report:
        rows.append(Row("warning", unsettled, "warn"))
    rows.append(_compare_row(result))
    if g("use_mask") is not False and g("m_active") == 0:
        rows.append(Row("warning", NO_DIMENSION_LEFT, "warn"))
    rows.append(Row("undecided dimensions", _text(g("undecided"))))
    optional = [("closing rounds", closing_rounds_text(g("closing_rounds")), ""),
                ("fresh verification", verification_text(g("verification")), ""),
                ("gap below m_A", closing_margin_text(g("closing_margin")), "")]
    rows += [Row(label, text, tone) for label, text, tone in optional if text is not None]
    kind = "WAE-GP baseline (--no-mask)" if g("use_mask") is False else "MaskAAE"
    rows.append(Row("model", f"{kind}, preset {_text(g('preset'))}, schedule {_text(g('schedule'))}"))
    shape = g("data_shape")
    shape_text = "x".join(map(str, shape)) if isinstance(shape, (list, tuple)) else _text(shape)
    source = _text(g("source"))
    rows.append(Row("source", f"{source} ({shape_text} per sample)", "mono", lead=source))
    skipped = skipped_text(g("skipped_files"), g("skipped_examples"))
    if skipped is not None:
        rows.append(Row("skipped files", skipped, "warn"))
    procs = g("processes")
    where = _text(g("device")) + (f", {procs} processes" if isinstance(procs, int) and procs > 1 else "")
    rows.append(Row("steps", f"{_text(g('steps'))} ({_text(g('stop_reason'))}) in {fmt(g('seconds'), '.1f')} s on {where}"))
    rows.append(Row("reconstruction error", fmt(g("reconstruction_error"), ".4f")))
    rows.append(Row("Wasserstein estimate W", fmt(g("wasserstein"), ".4f")))
    pixels = isinstance(shape, (list, tuple)) and len(shape) == 3
    rows.append(Row("Frechet distance (pixels)" if pixels else "Frechet distance (data space)", fmt(g("frechet_distance"), ".4f")))
    if pixels and ("fid" in result or "kid_mean" in result):  # (a result.json from before FID has neither)
        rows += _fid_rows(result)
    rows.append(Row("precision / recall (k = 3)", f"{fmt(g('precision'), '.3f')} / {fmt(g('recall'), '.3f')}"))
    rows.append(Row("NAC (active dims)", fmt(g("nac"), ".4f")))
    mask = finite_floats(g("mask"))
    if mask and not report:
        rows.append(Row("mask (sorted)", " ".join(f"{v:.2f}" for v in sorted(mask, reverse=True))))
    rows.append(Row("seed", _text(g("seed"))))
    return rows
