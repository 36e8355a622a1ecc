"""Logging helpers referenced from ``settings.LOGGING``."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keeps the one-line record of a 4xx answer and drops its traceback.

    Django logs a ``PermissionDenied`` (403) or a ``SuspiciousOperation`` (400) with the exception attached, so every
    refused request would print a full traceback: noise that buries real errors. A 4xx is the client's mistake and
    its line (method, path, reason) says all there is to say; 5xx records keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
