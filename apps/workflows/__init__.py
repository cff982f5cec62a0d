"""Persisted multi-step runs on Celery (docs/workflows.md)."""
