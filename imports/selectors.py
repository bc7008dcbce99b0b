"""Imports reads reused by pages and endpoints."""

from __future__ import annotations

from typing import Any

from imports.models import ImportJob


def job_progress(job: ImportJob) -> dict[str, Any]:
    """What a progress bar shows of `job`: JSON data, no query."""
    return {
        "id": str(job.public_id),
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "finished": job.is_finished,
        "percent": job.percent,
        "bytes_read": job.bytes_read,
        "bytes_total": job.bytes_total,
        "read": job.rows_read,
        "created": job.rows_created,
        "updated": job.rows_updated,
        "unchanged": job.rows_unchanged,
        "rejected": job.rows_rejected,
        "error_message": job.error_message,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
