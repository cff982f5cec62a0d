import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from apps.optimization import anomalies, nab

STEP = np.timedelta64(3600, "s")


# The weekly profile is trusted once each of its bins has been seen MIN_SEASONS times.
WEEKLY_LEARNT = 24 * 7 * anomalies.MIN_SEASONS


def _hourly(n, seed=0, *, noise=1.0, weekend=10.0):
    """Hourly series with a daily and a weekly rhythm plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2024-01-01T00:00:00") + STEP * np.arange(n)
    hours = np.arange(n)
    values = (
        100
        + 20 * np.sin(2 * np.pi * hours / 24)
        + weekend * np.isin((hours // 24) % 7, [5, 6])
        + noise * rng.normal(size=n)
    )
    return ts, values


def test_scores_are_causal():
    ts, values = _hourly(24 * 30)
    before = anomalies.anomaly_scores(ts, values)
    changed = values.copy()
    changed[400:] += np.random.default_rng(1).normal(0, 50, size=len(values) - 400)
    after = anomalies.anomaly_scores(ts, changed)
    np.testing.assert_array_equal(before[:400], after[:400])
    assert ((before >= 0) & (before <= 1)).all()
    # Past RANGE_MIN_ROWS too, where the range rule and the damping of repeats are active.
    ts, values = _hourly(24 * 42)
    values[650] += 30
    before = anomalies.anomaly_scores(ts, values)
    changed = values.copy()
    changed[700:] = changed[700:] * 3 - 500
    after = anomalies.anomaly_scores(ts, changed)
    np.testing.assert_array_equal(before[:700], after[:700])


def test_clean_seasonal_series_stays_quiet_at_medium():
    ts, values = _hourly(24 * 42, weekend=0.0)
    assert anomalies.detections(anomalies.anomaly_scores(ts, values), "medium").size == 0
    # A weekend rhythm may surprise it until the weekly profile is learnt, never after.
    ts, values = _hourly(24 * 42)
    flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
    assert (flagged < WEEKLY_LEARNT).all()


def test_spike_is_flagged_where_it_happens():
    ts, values = _hourly(24 * 42)
    values[800] += 25
    flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
    assert flagged[flagged >= WEEKLY_LEARNT].tolist() == [800]


def test_level_shift_is_flagged_then_adapted_to():
    ts, values = _hourly(24 * 42)
    values[700:] -= 30
    flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
    flagged = flagged[flagged >= WEEKLY_LEARNT]
    assert flagged.size and 700 <= flagged[0] <= 703
    assert (flagged < 700 + 48).all()  # quiet again within two days


def test_gaps_and_constant_series_neither_crash_nor_fire():
    ts, values = _hourly(24 * 30, weekend=0.0)
    keep = np.ones(len(ts), dtype=bool)
    keep[300:360] = False  # two and a half days missing
    values_with_nan = values.copy()
    values_with_nan[500] = np.nan
    scores = anomalies.anomaly_scores(ts[keep], values_with_nan[keep])
    assert scores[500 - 60] == 0.0  # the NaN row is a gap, not a zero
    assert anomalies.detections(scores, "medium").size == 0
    flat = anomalies.anomaly_scores(ts, np.full(len(ts), 7.0))
    assert not flat.any()
    low, high = anomalies.expected_range(ts, np.full(len(ts), 7.0))
    assert np.nanmax(np.abs(low[1:] - 7.0)) < 1e-6 and np.nanmax(np.abs(high[1:] - 7.0)) < 1e-6


def test_expected_range_contains_normal_values_and_excludes_the_spike():
    ts, values = _hourly(24 * 42)
    values[800] += 25
    low, high = anomalies.expected_range(ts, values)
    assert not low[800] <= values[800] <= high[800]
    inside = (values[100:] >= low[100:]) & (values[100:] <= high[100:])
    assert inside.mean() > 0.99


DAY = np.timedelta64(86_400, "s")


def _daily_revenue(seed, n=365, sigma=0.12):
    """A creator's daily revenue: weekend highs, a Monday dip, 40 % growth over the year and
    multiplicative log-normal noise (mean 1)."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2025-01-06T00:00:00") + DAY * np.arange(n)
    dow = np.arange(n) % 7
    base = 400 * (1 + 0.3 * np.isin(dow, [4, 5]) - 0.15 * (dow == 0)) * (1 + 0.4 * np.arange(n) / n)
    return ts, base * rng.lognormal(-(sigma**2) / 2, sigma, n)


@pytest.mark.parametrize("seed", range(5))
def test_daily_revenue_noise_stays_quiet_and_a_three_day_drop_is_flagged(seed):
    ts, values = _daily_revenue(seed)
    assert anomalies.detections(anomalies.anomaly_scores(ts, values), "medium").size <= 2
    values[300:303] *= 0.4  # revenue down 60 % for three days
    flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
    assert ((flagged >= 300) & (flagged <= 302)).any()
    assert flagged.size <= 4


@pytest.mark.parametrize("seed", range(5))
def test_a_quiet_first_day_does_not_blind_the_detector_for_the_year(seed):
    # The second day equal to the first to the cent: the first residual is ~0, the scale started
    # there and crept up under its own clipping, so warm-up rows looked 100 scales out and the
    # surprise they set hid a 5x tips spike ten months later (the demo's incident, 2026-12-03).
    ts, values = _daily_revenue(seed)
    values[1] = values[0] + 0.01
    values[360] *= 5.5
    scores = anomalies.anomaly_scores(ts, np.log1p(values))
    assert scores[360] >= anomalies.threshold_for("medium")
    assert anomalies.detections(scores, "medium").size <= 3


def test_an_echo_of_an_alert_scores_zero_a_later_bigger_incident_alerts_again():
    ts, values = _hourly(24 * 42)
    values[800] += 15
    values[830] += 40  # thirty rows later: as far as alerts go, the same incident
    values[1000] += 60  # bigger, more than REPEAT_ROWS rows later: news again
    trace = anomalies.anomaly_trace(ts, values)
    threshold = anomalies.threshold_for("medium")
    assert trace.scores[800] >= threshold and trace.scores[1000] >= threshold
    assert trace.point[830] >= threshold and trace.scores[830] == 0.0
    # Every row the forecaster alone would flag but the score does not had a higher score shortly before.
    for j in np.flatnonzero((trace.point >= threshold) & (trace.scores == 0)):
        assert trace.scores[max(j - anomalies.REPEAT_ROWS, 0) : j].max() >= trace.point[j]


def test_leaving_the_range_seen_so_far_is_flagged_even_when_the_forecaster_follows():
    rng = np.random.default_rng(5)
    n = 1500
    ts = np.datetime64("2024-01-01T00:00:00") + np.timedelta64(300, "s") * np.arange(n)
    values = 50 + rng.normal(0, 1, n)
    values[1000:] += np.linspace(0, 30, n - 1000)  # a slow climb the level keeps up with
    trace = anomalies.anomaly_trace(ts, values)
    flagged = anomalies.detections(trace.scores, "medium")
    first = flagged[flagged >= 1000][0]
    assert values[first] > values[:first].max()
    assert first < 1000 + 200


def test_daily_square_wave_edges_are_forecast_and_a_missing_high_phase_is_flagged():
    """A metric that steps up at 09:00 and down at 17:00 every day (5-minute rows, small noise): once
    the daily profile is learnt the edges are expected (the model choice goes by time of day), and
    a day whose high phase never comes is flagged during it."""
    step = np.timedelta64(300, "s")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 288 * 14
        ts = np.datetime64("2024-01-01T00:00:00") + step * np.arange(n)
        hour = (np.arange(n) % 288) / 12
        values = np.where((hour >= 9) & (hour < 17), 80.0, 20.0) + rng.normal(0, 1, n)
        flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
        assert (flagged >= 288 * 3).sum() <= 2
        day = 288 * 11
        values[day + 108 : day + 204] = 20.0 + rng.normal(0, 1, 96)
        flagged = anomalies.detections(anomalies.anomaly_scores(ts, values), "medium")
        assert ((flagged >= day + 108) & (flagged < day + 204)).any()


def test_unknown_sensitivity_is_refused():
    with pytest.raises(anomalies.AnomalyInputError):
        anomalies.detections(np.zeros(3), "extreme")


# NAB scoring on hand-checkable files: 1000 rows, probation 150, one window of rows 500..599.
TRUTH = nab.FileTruth("f.csv", 1000, ((500, 599),))
STD = nab.PROFILES["standard"]


def _score(rows):
    scores = np.zeros(1000)
    scores[list(rows)] = 1.0
    return nab.corpus_score({"f.csv": scores}, {"f.csv": TRUTH}, STD, threshold=1.0)


def test_detection_at_window_start_is_a_full_true_positive():
    assert _score([500]).raw == pytest.approx(1.0)
    # Late in the window is worth less, near the end almost nothing.
    assert 0 < _score([590]).raw < 0.3


def test_false_positive_before_any_window_costs_a_fp():
    assert _score([500, 300]).raw == pytest.approx(1.0 - 0.11)
    assert _score([500, 100]).raw == pytest.approx(1.0)  # in probation: not scored
    # Right after a window a FP costs almost nothing, three window widths later the full A_FP.
    assert _score([500, 601]).raw == pytest.approx(1.0, abs=0.01)
    assert _score([500, 950]).raw == pytest.approx(1.0 - 0.11)


def test_null_detector_normalises_to_0_and_perfect_to_100():
    assert _score([]).normalised == pytest.approx(0.0)
    assert _score([500]).normalised == pytest.approx(100.0)
    assert _score([]).raw == -1.0


def test_a_window_wholly_in_probation_is_neither_found_nor_missed():
    """As NAB's sweeper.py: its rows are all "probationary", so it is not scored at all."""
    early = nab.FileTruth("f.csv", 1000, ((50, 99), (500, 599)))
    scores = np.zeros(1000)
    scores[500] = 1.0
    result = nab.corpus_score({"f.csv": scores}, {"f.csv": early}, STD, threshold=1.0)
    assert result.raw == pytest.approx(1.0) and result.null == -1.0 and result.perfect == 1.0
    assert result.normalised == pytest.approx(100.0)
    assert nab.window_metrics({"f.csv": scores}, {"f.csv": early}, threshold=1.0).recall == 1.0


def test_threshold_sweep_finds_the_best_threshold():
    scores = np.zeros(1000)
    scores[500], scores[300] = 0.9, 0.5
    result = nab.corpus_score({"f.csv": scores}, {"f.csv": TRUTH}, STD)
    assert result.threshold == 0.9 and result.normalised == pytest.approx(100.0)


def _write_nab(tmp_path, *, value="1.0", windows=True):
    data = tmp_path / "data" / "folder"
    data.mkdir(parents=True)
    ts = np.datetime64("2024-01-01T00:00:00") + np.timedelta64(300, "s") * np.arange(600)
    rng = np.random.default_rng(3)
    vals = 10 + rng.normal(size=600)
    vals[400] = 40
    lines = ["timestamp,value"] + [f"{str(t).replace('T', ' ')},{v}" for t, v in zip(ts, vals, strict=True)]
    lines[5] = f"{str(ts[4]).replace('T', ' ')},{value}"
    (data / "a.csv").write_text("\n".join(lines) + "\n")
    win = {"folder/a.csv": [["2024-01-02 09:20:00", "2024-01-02 12:00:00"]]} if windows else {}
    (tmp_path / "windows.json").write_text(json.dumps(win))
    return tmp_path / "data", tmp_path / "windows.json"


def test_command_writes_scores_and_prints_the_scores(tmp_path, capsys):
    data, windows = _write_nab(tmp_path)
    out = tmp_path / "out.json"
    call_command("evaluate_anomalies", "--data-dir", str(data), "--windows", str(windows), "--out", str(out))
    written = json.loads(out.read_text())
    rows = written["folder/a.csv"]
    assert len(rows) == 600 and rows[0]["timestamp"] == "2024-01-01 00:00:00"
    assert all(0 <= r["score"] <= 1 for r in rows)
    printed = capsys.readouterr().out
    assert "precision" in printed and "F1" in printed
    assert "NAB standard: 100.0" in printed


def test_command_scores_each_folder_with_a_threshold_from_the_others(tmp_path, capsys):
    data, windows = _write_nab(tmp_path)
    other = data / "other"
    other.mkdir()
    (other / "b.csv").write_text((data / "folder" / "a.csv").read_text())
    win = json.loads(windows.read_text())
    win["other/b.csv"] = win["folder/a.csv"]
    windows.write_text(json.dumps(win))
    out = tmp_path / "out.json"
    call_command("evaluate_anomalies", "--data-dir", str(data), "--windows", str(windows), "--out", str(out), "--lofo")
    printed = capsys.readouterr().out
    assert "leave-one-folder-out folder: 100.0" in printed and "leave-one-folder-out other: 100.0" in printed
    assert "leave-one-folder-out pooled: 100.0" in printed and "leave-one-file-out pooled: 100.0" in printed


@pytest.mark.parametrize(
    ("value", "windows", "message"),
    [("abc", True, "is not a number"), ("1.0", False, "no entry for folder/a.csv")],
)
def test_command_refuses_bad_input_clearly(tmp_path, value, windows, message):
    data, win = _write_nab(tmp_path, value=value, windows=windows)
    with pytest.raises(CommandError, match=message):
        call_command("evaluate_anomalies", "--data-dir", str(data), "--windows", str(win), "--out", "x.json")


def test_command_refuses_a_missing_directory(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate_anomalies", "--data-dir", str(tmp_path / "no"), "--windows", "w", "--out", "o")
