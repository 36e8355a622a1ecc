"""Settings for the test suite: production settings with a throwaway secret, fast hashing and plain HTTP.

``DATABASE_URL`` and ``REDIS_URL`` are honoured exactly as in production, so CI runs the suite on PostgreSQL and
a real Redis broker.
"""

import os
import secrets
import uuid

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if REDIS_URL:
    # A queue of this run's own, so jobs enqueued by tests never reach a developer's running worker.
    CELERY_TASK_DEFAULT_QUEUE = f"concord-test-{uuid.uuid4().hex[:12]}"
# Serve static files straight from the apps (no collectstatic in tests); live-server browser tests need them.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
