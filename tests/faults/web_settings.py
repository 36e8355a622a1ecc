"""Settings of the gunicorn the fault tests start: the test settings (the production settings with fast password
hashing and plain HTTP, ``config/test_settings.py``) on the queue the test gives it, so that its jobs reach the
test's worker."""

from config.env import env_str
from config.test_settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "concord")
