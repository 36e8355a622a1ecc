"""E-mail in tests: Django's locmem backend collects messages in ``mailoutbox`` (pytest-django); the jobs that
send them run in this process (the suite's Celery is eager without Redis, and a broker with no worker with it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.celery import app


@pytest.fixture
def jobs_in_process() -> Iterator[None]:
    """Celery jobs run where they are queued (on commit), as in ``make demo``, with or without a broker."""
    eager, propagates = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = eager, propagates
