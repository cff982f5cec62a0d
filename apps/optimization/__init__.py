"""Optimization: PPV pricing, posting and messaging times, anomaly detection and recommendations.

The engines are plain functions over NumPy arrays (pricing.py, timing.py), tested against
simulators with a known answer; the pages, the nightly job and the stored recommendations build
on them (docs/optimization-pricing.md, docs/optimization-timing.md).
"""
