"""``python manage.py evaluate_anomalies --data-dir DIR --windows FILE --out FILE.json``: run the
anomaly detector (one fixed configuration) on every NAB-format CSV under DIR, write each file's
scores, and print window-wise precision/recall/F1 and the NAB scores (docs/optimization-anomalies.md).

The NAB profile scores sweep the threshold on the data given (NAB's own optimizer does the same),
so they use one piece of knowledge of the data; the next line scores the standard profile at the
sensitivity's fixed threshold instead, chosen before the command sees the data. ``--lofo`` adds
held-out scores: each top-level folder (then each file) at the threshold swept on the others.
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
        parser.add_argument(
            "--lofo",
            action="store_true",
            help="also print held-out NAB standard scores per folder and per file, threshold swept on the others",
        )

    def handle(self, *args, data_dir, windows, out, sensitivity, lofo=False, **options):
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
                f"NAB {profile.name}: {result.normalised:.1f} (threshold {result.threshold:.4f} swept on this "
                f"data as NAB's optimizer does, raw {result.raw:.2f}, null {result.null:.1f}, "
                f"perfect {result.perfect:.1f})"
            )
        fixed = nab.corpus_score(scores, truths, nab.PROFILES["standard"], threshold=threshold)
        self.stdout.write(
            f"NAB standard at the fixed {sensitivity} threshold {threshold}: {fixed.normalised:.1f} "
            f"(raw {fixed.raw:.2f})"
        )
        if lofo:
            self._leave_one_folder_out(scores, truths)

    def _leave_one_folder_out(self, scores, truths):
        """Held-out scores (standard profile): per top-level folder, the threshold swept on the other
        folders applied to this one (normalised; raw when the folder has no window to normalise by),
        the folders pooled, and the same with each file held out in turn (``nab.held_out_scores``)."""
        standard = nab.PROFILES["standard"]
        folders = sorted({name.split("/")[0] for name in truths})
        if len(folders) < 2:
            self.stdout.write("leave-one-folder-out: needs at least two folders")
            return
        by_folder = nab.held_out_scores(scores, truths, lambda name: name.split("/")[0], standard)
        for r in by_folder:
            value = f"{r.normalised:.1f}" if r.normalised is not None else f"raw {r.raw:.2f} (no windows)"
            self.stdout.write(
                f"leave-one-folder-out {r.group}: {value} at threshold {r.threshold:.4f} from the other folders"
            )
        with_windows = [r.normalised for r in by_folder if r.normalised is not None]
        mean = f"{sum(with_windows) / len(with_windows):.1f}" if with_windows else "n/a"
        self.stdout.write(
            f"leave-one-folder-out pooled: {nab.pooled_score(by_folder, standard):.1f} "
            f"(mean of the folders with windows: {mean})"
        )
        by_file = nab.held_out_scores(scores, truths, lambda name: name, standard)
        self.stdout.write(
            f"leave-one-file-out pooled: {nab.pooled_score(by_file, standard):.1f} "
            f"(each file at the threshold swept on the {len(by_file) - 1} others)"
        )
