"""NAB scoring: the Numenta Anomaly Benchmark's rules for judging a causal anomaly detector, so
``evaluate_anomalies`` can score ``anomalies.anomaly_scores`` on NAB-format data.

Implemented from the NAB sweeper (github.com/numenta/NAB ``nab/sweeper.py``), pure NumPy:

1. **Probation**: the first ``min(floor(0.15 n), 750)`` rows of a file are not scored.
2. **Row weights** (``row_weights``): inside a window of ``w`` rows ending at row ``e``, row ``i``
   has the relative position ``y = -(e - i + 1) / w`` (-1 at the window's first row, about 0 at
   its last) and weighs ``A_TP * sigma(y) / sigma(-1)`` where ``sigma(y) = 2 / (1 + exp(5 y)) - 1``
   so a detection at the window's first row is worth ``A_TP``. Outside windows a detection is a
   false positive: ``A_FP * sigma(y)`` with ``y = (i - e_prev) / (w_prev - 1)`` after the
   preceding window (``sigma`` is 0 at its end and -1 from three window widths on), ``-A_FP``
   flat when no window precedes.
3. **File score at a threshold**: rows with ``score >= threshold`` are detections; each window
   counts its best (= earliest) detection once, a window without one costs ``-A_FN``; the false
   positives add up.
4. **Corpus score**: one threshold per profile for the whole corpus, the one that maximises the
   summed raw score (the sweep tries every distinct score). Normalised against the null detector
   (no detection: ``-A_FN`` per window) and the perfect one (``A_TP`` per window):
   ``100 (S - S_null) / (S_perfect - S_null)``.

Precision, recall and F1 (``window_metrics``) are window-wise, after probation: a window is found
when it holds at least one detection; a detection is true when it falls inside a window, false
otherwise (so precision counts rows, recall counts windows).

``load_corpus`` reads a NAB-format directory and windows JSON (``NABInputError`` says what is
wrong). What this does not do: run a detector. A window lying wholly in probation is not scored
at all (neither found nor missed, and not in the null and perfect scores), as NAB's
``sweeper.py`` does: its rows are all "probationary".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP": Profile("reward_low_FP", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN": Profile("reward_low_FN", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class FileTruth:
    """One file's rows and anomaly windows as row indices (``windows[k] = (first, last)``)."""

    name: str
    n_rows: int
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CorpusScore:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    normalised: float


def probation_rows(n_rows: int) -> int:
    return int(min(np.floor(PROBATION_SHARE * n_rows), PROBATION_SHARE * 5000))


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's ``2 / (1 + exp(5 y)) - 1`` (= 2 sigmoid(-5 y) - 1), and -1 beyond y = 3."""
    y = np.asarray(position, dtype=float)
    return np.where(y > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


def windows_to_rows(timestamps: np.ndarray, windows: Sequence[tuple[np.datetime64, np.datetime64]]):
    """Window limits (timestamps) to (first row, last row) inside them; empty windows dropped.

    Real NAB files step back in time now and then (a clock change in machine_temperature), so
    rows are located on the running maximum of the timestamps."""
    timestamps = np.maximum.accumulate(np.asarray(timestamps))
    rows = []
    for start, end in windows:
        first = int(np.searchsorted(timestamps, start, side="left"))
        last = int(np.searchsorted(timestamps, end, side="right")) - 1
        if last >= first:
            rows.append((first, last))
    return tuple(rows)


def row_weights(truth: FileTruth, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the weighted score a detection there earns, and its window index (-1 outside)."""
    n = truth.n_rows
    idx = np.arange(n, dtype=float)
    weight = np.full(n, -profile.fp)
    window_of = np.full(n, -1, dtype=int)
    max_tp = float(scaled_sigmoid(-1.0))
    prev_end: int | None = None
    prev_width = 0.0
    bounds = [*truth.windows, (n, n)]
    for k, (first, last) in enumerate(bounds):
        gap_start = 0 if prev_end is None else prev_end + 1
        if prev_end is not None and gap_start < first:
            denom = max(prev_width - 1.0, 1.0)
            weight[gap_start:first] = profile.fp * scaled_sigmoid((idx[gap_start:first] - prev_end) / denom)
        if k == len(truth.windows):
            break
        width = float(last - first + 1)
        y = -(last - idx[first : last + 1] + 1.0) / width
        weight[first : last + 1] = profile.tp * scaled_sigmoid(y) / max_tp
        window_of[first : last + 1] = k
        prev_end, prev_width = last, width
    return weight, window_of


def file_curve(scores: np.ndarray, truth: FileTruth, profile: Profile, thresholds: np.ndarray) -> np.ndarray:
    """Raw NAB score of one file at each threshold (detections are rows with score >= threshold)."""
    scores = np.asarray(scores, dtype=float)
    start = probation_rows(truth.n_rows)
    weight, window_of = row_weights(truth, profile)
    s, w, win = scores[start:], weight[start:], window_of[start:]
    # False positives: for each threshold, the sum of weights of outside rows at or above it.
    out = win < 0
    fp = _sum_at_or_above(s[out], w[out], thresholds)
    total = fp
    for k in range(len(truth.windows)):
        inside = win == k
        if not inside.any():  # wholly in probation: not scored (module docstring)
            continue
        # The best (earliest) detection's weight at each threshold: a running max over rows
        # sorted by score, read off at each threshold.
        ws, ss = w[inside], s[inside]
        order = np.argsort(-ss, kind="stable")
        best = np.maximum.accumulate(ws[order])
        count = np.searchsorted(-ss[order], -thresholds, side="right")
        total = total + np.where(count > 0, best[np.maximum(count - 1, 0)], -profile.fn)
    return total


def scored_windows(truth: FileTruth) -> int:
    """Windows with at least one row after probation: the ones NAB scores."""
    start = probation_rows(truth.n_rows)
    return sum(1 for _first, last in truth.windows if last >= start)


def _sum_at_or_above(values: np.ndarray, weights: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.zeros(len(thresholds))
    order = np.argsort(-values, kind="stable")
    csum = np.concatenate([[0.0], np.cumsum(weights[order])])
    count = np.searchsorted(-values[order], -thresholds, side="right")
    return csum[count]


def candidate_thresholds(all_scores: Sequence[np.ndarray]) -> np.ndarray:
    """Every distinct score, plus one above the maximum (no detection at all)."""
    values = np.unique(np.concatenate([np.asarray(s, dtype=float) for s in all_scores] or [np.zeros(0)]))
    return np.concatenate([values, [np.inf]])


def corpus_score(
    scores: Mapping[str, np.ndarray],
    truths: Mapping[str, FileTruth],
    profile: Profile,
    threshold: float | None = None,
) -> CorpusScore:
    """Normalised NAB score of a corpus; the threshold is swept (best one kept) unless given."""
    names = sorted(truths)
    thresholds = (
        np.array([threshold], dtype=float)
        if threshold is not None
        else candidate_thresholds([scores[name] for name in names])
    )
    raw = np.zeros(len(thresholds))
    n_windows = 0
    for name in names:
        raw += file_curve(scores[name], truths[name], profile, thresholds)
        n_windows += scored_windows(truths[name])
    best = int(np.argmax(raw))
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    span = perfect - null
    normalised = 100.0 * (raw[best] - null) / span if span > 0 else 0.0
    return CorpusScore(profile.name, float(thresholds[best]), float(raw[best]), null, perfect, normalised)


@dataclass(frozen=True)
class HeldOutScore:
    """One held-out group (a folder or a file): scored at the threshold swept on all the others."""

    group: str
    threshold: float
    raw: float
    windows: int  # windows scored (after probation); 0: the raw score is its false positives only
    normalised: float | None  # None when the group has no window to normalise by


def held_out_scores(
    scores: Mapping[str, np.ndarray],
    truths: Mapping[str, FileTruth],
    group_of: Callable[[str], str],
    profile: Profile,
) -> list[HeldOutScore]:
    """Cross-validated NAB score: for each group (``group_of(file name)``), the threshold is swept on
    the files of the other groups (as ``corpus_score`` does: the lowest of their scores that
    maximises their summed raw score) and applied to the group's own files.

    Every file's curve is computed once at every distinct score; a group's training sweep only
    considers the scores of its training files (and "no detection"), so the result is exactly
    ``corpus_score(others)`` then ``corpus_score(group, threshold=...)``."""
    names = sorted(truths)
    groups = sorted({group_of(name) for name in names})
    thresholds = candidate_thresholds([scores[name] for name in names])
    curves = {name: file_curve(scores[name], truths[name], profile, thresholds) for name in names}
    results = []
    for group in groups:
        test = [name for name in names if group_of(name) == group]
        train = [name for name in names if group_of(name) != group]
        if not train:
            continue
        train_values = np.unique(np.concatenate([np.asarray(scores[name], dtype=float) for name in train]))
        allowed = np.isin(thresholds, train_values) | np.isinf(thresholds)
        train_raw = np.sum([curves[name] for name in train], axis=0)
        best = int(np.flatnonzero(allowed)[np.argmax(train_raw[allowed])])
        raw = float(sum(curves[name][best] for name in test))
        windows = sum(scored_windows(truths[name]) for name in test)
        span = (profile.tp + profile.fn) * windows
        normalised = 100.0 * (raw + profile.fn * windows) / span if windows else None
        results.append(HeldOutScore(group, float(thresholds[best]), raw, windows, normalised))
    return results


def pooled_score(results: Sequence[HeldOutScore], profile: Profile) -> float:
    """The held-out groups' raw scores summed and normalised over all their windows (a group
    without windows adds its false positives): NAB's normalisation applied to cross-validated
    detections."""
    windows = sum(r.windows for r in results)
    if not windows:
        return 0.0
    raw = sum(r.raw for r in results)
    return 100.0 * (raw + profile.fn * windows) / ((profile.tp + profile.fn) * windows)


@dataclass(frozen=True)
class WindowMetrics:
    threshold: float
    detections: int
    true_detections: int
    windows: int
    windows_found: int
    precision: float
    recall: float
    f1: float


def window_metrics(
    scores: Mapping[str, np.ndarray], truths: Mapping[str, FileTruth], threshold: float
) -> WindowMetrics:
    """Window-wise precision/recall/F1 after probation (see the module docstring)."""
    detections = true_detections = n_windows = found = 0
    for name, truth in truths.items():
        start = probation_rows(truth.n_rows)
        hit = np.asarray(scores[name], dtype=float) >= threshold
        hit[:start] = False
        inside = np.zeros(truth.n_rows, dtype=bool)
        for first, last in truth.windows:
            inside[first : last + 1] = True
            if last < start:  # wholly in probation: not scored
                continue
            n_windows += 1
            found += bool(hit[first : last + 1].any())
        detections += int(hit.sum())
        true_detections += int((hit & inside).sum())
    precision = true_detections / detections if detections else 0.0
    recall = found / n_windows if n_windows else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return WindowMetrics(threshold, detections, true_detections, n_windows, found, precision, recall, f1)


class NABInputError(ValueError):
    """A NAB-format directory or windows file cannot be read (the message says which and why)."""


@dataclass(frozen=True)
class NABFile:
    name: str  # relative path, the windows file's key
    timestamps: np.ndarray  # datetime64[s]
    values: np.ndarray
    truth: FileTruth


def load_corpus(data_dir: str | Path, windows_path: str | Path) -> list[NABFile]:
    """Every ``*.csv`` under ``data_dir`` (``timestamp,value``) with its windows from the JSON."""
    root = Path(data_dir)
    if not root.is_dir():
        raise NABInputError(f"data directory {root} does not exist")
    try:
        windows = json.loads(Path(windows_path).read_text())
    except OSError as exc:
        raise NABInputError(f"cannot read windows file {windows_path}: {exc.strerror}")
    except json.JSONDecodeError as exc:
        raise NABInputError(f"windows file {windows_path} is not JSON: {exc}")
    if not isinstance(windows, dict):
        raise NABInputError(f"windows file {windows_path} must map file paths to window lists")
    paths = sorted(root.rglob("*.csv"))
    if not paths:
        raise NABInputError(f"no .csv files under {root}")
    files = []
    for path in paths:
        name = path.relative_to(root).as_posix()
        if name not in windows:
            raise NABInputError(f"windows file has no entry for {name}")
        timestamps, values = _read_csv(path, name)
        try:
            limits = [(np.datetime64(start, "s"), np.datetime64(end, "s")) for start, end in windows[name]]
        except (TypeError, ValueError):
            raise NABInputError(f"windows for {name} must be [[start, end], ...] timestamps")
        truth = FileTruth(name, len(values), windows_to_rows(timestamps, limits))
        files.append(NABFile(name, timestamps, values, truth))
    return files


def _read_csv(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise NABInputError(f"cannot read {name}: {exc}")
    if not rows or [c.strip() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise NABInputError(f"{name} must start with the header timestamp,value")
    stamps, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2:
            raise NABInputError(f"{name} line {line} needs a timestamp and a value")
        try:
            stamps.append(np.datetime64(row[0].strip(), "s"))
        except ValueError:
            raise NABInputError(f"{name} line {line}: {row[0]!r} is not a timestamp")
        try:
            values.append(float(row[1]))
        except ValueError:
            raise NABInputError(f"{name} line {line}: {row[1]!r} is not a number")
    return np.array(stamps, dtype="datetime64[s]"), np.array(values, dtype=float)
