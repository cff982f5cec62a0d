"""``python manage.py evaluate_anomalies --data-dir DIR --windows FILE --out FILE.json``: run the
anomaly detector (one fixed configuration) on every NAB-format CSV under DIR, write each file's
scores, and print window-wise precision/recall/F1 and the NAB scores (docs/optimization-anomalies.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.optimization import anomalies, nab


class Command(BaseCommand):
    help = "Score the anomaly detector on NAB-format data (timestamp,value CSVs and a windows JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--data-dir", required=True, help="folder holding <folder>/<file>.csv")
        parser.add_argument("--windows", required=True, help="JSON: relative path -> [[start, end], ...]")
        parser.add_argument("--out", required=True, help="JSON file to write the per-row scores to")
        parser.add_argument(
            "--sensitivity",
            choices=sorted(anomalies.SENSITIVITY_THRESHOLDS),
            default="medium",
            help="threshold for precision/recall/F1 (the NAB scores sweep their own)",
        )

    def handle(self, *args, data_dir, windows, out, sensitivity, **options):
        try:
            files = nab.load_corpus(data_dir, windows)
        except nab.NABInputError as exc:
            raise CommandError(str(exc))
        started = time.perf_counter()
        scores = {}
        for f in files:
            try:
                scores[f.name] = anomalies.anomaly_scores(f.timestamps, f.values)
            except anomalies.AnomalyInputError as exc:
                raise CommandError(f"{f.name}: {exc.message}")
        elapsed = time.perf_counter() - started
        rows = sum(f.truth.n_rows for f in files)
        payload = {
            f.name: [
                {"timestamp": str(ts).replace("T", " "), "score": round(float(score), 6)}
                for ts, score in zip(f.timestamps, scores[f.name], strict=True)
            ]
            for f in files
        }
        try:
            Path(out).write_text(json.dumps(payload))
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}")

        truths = {f.name: f.truth for f in files}
        threshold = anomalies.threshold_for(sensitivity)
        m = nab.window_metrics(scores, truths, threshold)
        self.stdout.write(f"{len(files)} files, {rows} rows, detector {elapsed:.2f} s; scores written to {out}")
        self.stdout.write(
            f"{sensitivity} sensitivity (score >= {threshold}): precision {m.precision:.3f} "
            f"({m.true_detections}/{m.detections} detections in windows), recall {m.recall:.3f} "
            f"({m.windows_found}/{m.windows} windows), F1 {m.f1:.3f}"
        )
        for profile in nab.PROFILES.values():
            result = nab.corpus_score(scores, truths, profile)
            self.stdout.write(
                f"NAB {profile.name}: {result.normalised:.1f} (threshold {result.threshold:.4f}, "
                f"raw {result.raw:.2f}, null {result.null:.1f}, perfect {result.perfect:.1f})"
            )
