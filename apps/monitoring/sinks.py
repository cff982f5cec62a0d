"""Metrics sinks (METRICS_SINKS): where apps.core.metrics hands its batches.

- ``DatabaseSink`` (the default): the batch's per-minute points as MetricSample rows, one insert.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction

from apps.core.metrics import Batch
from apps.monitoring.models import MetricSample


class DatabaseSink:
    name = "database"

    def write(self, batch: Batch) -> None:
        rows = []
        for point in batch.points:
            row = MetricSample(
                name=point.name[:100],
                unit=point.unit[:20],
                dims_key=point.dims_key[:255],
                dimensions=dict(point.dimensions),
                resolution=MetricSample.Resolution.MINUTE,
                start=datetime.fromtimestamp(point.minute, UTC),
                count=point.count,
                sum=point.sum,
                min=point.min,
                max=point.max,
            )
            for name, value in zip(MetricSample.BUCKET_FIELDS, point.buckets, strict=True):
                setattr(row, name, value)
            rows.append(row)
        if rows:
            # One transaction: a batch that fails halfway is retried whole, never written twice.
            with transaction.atomic():
                MetricSample.objects.bulk_create(rows, batch_size=1000)
