"""The Celery app the ecosystem test's worker subprocess runs (broker and result backend:
the Aspen node named by ASPEN_CELERY_URL)."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("ASPEN_CELERY_URL", "redis://127.0.0.1:6379/0")
app = Celery("aspen_ecosystem", broker=URL, backend=URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_acks_late=True,  # kombu's unacked bookkeeping (its restore/ack scripts and locks)
    result_expires=600,
    worker_prefetch_multiplier=4,
)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def total(values: list[int]) -> int:
    return sum(values)
