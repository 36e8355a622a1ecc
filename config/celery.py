"""The Celery app: ``celery -A config worker`` and ``celery -A config beat``.

Configuration lives in Django settings under the ``CELERY_`` prefix (see ``config/settings.py``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _survive_broker_loss_with_unacked_messages() -> None:
    """Work around a crash of kombu 5.7's Redis transport: a worker that holds unacknowledged messages (delayed
    jobs, or one running) when Redis goes away collects its broken connection, which forgets the broker's address,
    and then closes it; closing tries to push the unacknowledged messages back, cannot even build a Redis client
    and raises ``AttributeError``, which nothing expects: "Unrecoverable error", the worker exits instead of
    reconnecting. Raised as the connection error it is, it is ignored like any other during the close, and the
    worker reconnects; the messages come back after the visibility timeout if Redis kept them.
    ``tests/faults/test_faults.py`` restarts Redis under a worker holding messages."""
    from kombu.transport import redis as kombu_redis

    connparams = kombu_redis.Channel._connparams
    if getattr(connparams, "concord_guarded", False):
        return

    def guarded(self: kombu_redis.Channel, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise kombu_redis.redis.ConnectionError("the broker connection is already closed")
        return connparams(self, asynchronous)

    guarded.concord_guarded = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = guarded


_survive_broker_loss_with_unacked_messages()

app = Celery("concord")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's Celery jobs live in its ``jobs`` module (in Concord's words a "task" is an item to label).
app.autodiscover_tasks(related_name="jobs")
