"""Concord settings: everything that differs between a laptop and production comes from the environment.

Embedded default (no variables set, ``DEBUG=1``): SQLite under ``var/`` and Celery jobs run in-process.
Production: ``DATABASE_URL=postgres://…``, ``REDIS_URL=redis://…``, ``SECRET_KEY``, ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from config.env import (
    env_bool,
    env_email_address,
    env_int,
    env_list,
    env_origins,
    env_site_url,
    env_smtp_options,
    env_str,
    env_url,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONCORD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(debug=DEBUG, fallback_file=str(VAR_DIR / "secret_key"))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.ConcordAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The layers, from the bottom up (docs/ARCHITECTURE.md): the core domain, quality, routing, then the outer
    # layer: the REST API, imports and exports, pages, the customer admin and the demo data.
    "labeling",
    "quality",
    "routing",
    "api",
    "exchange",
    "pages",
    "backoffice",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "labeling.logins.LoginThrottleMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "labeling.tenancy.CurrentOrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: a view's dropped database connection answers 503 + Retry-After (the client retries; idempotent).
    "labeling.middleware.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "labeling.tenancy.organization_context",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'concord.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
if DATABASE_URL.startswith("sqlite:"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default must work on a fresh clone
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo server read while a job writes; IMMEDIATE avoids "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A database host that does not answer (a failover, a network cut) must not hold a request, a job or /healthz
    # for the operating system's TCP timeout (minutes): connecting gives up after this many seconds (503 then).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
    )
# The router's hand-written statements (routing/sql.py) run prepared: planning them costs more than running them.
# Only they are prepared, explicitly; the connection's automatic preparation stays off (Django's default), because
# psycopg's automatic mode also counts every ORM statement in a cache keyed by its full text, which would keep
# the last hundred bulk INSERTs of an import (megabytes each) alive. Turn off behind a connection pooler that
# cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and Celery ----------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
# Every Redis call (cache and broker) is bounded: a frozen Redis costs a request seconds, never an unbounded wait.
REDIS_CONNECT_TIMEOUT = env_int("REDIS_CONNECT_TIMEOUT", 1, minimum=1)
REDIS_SOCKET_TIMEOUT = env_int("REDIS_SOCKET_TIMEOUT", 1, minimum=1)
# After a failed call, the cache and job queueing skip Redis this many seconds before trying it again.
REDIS_RETRY_INTERVAL = env_int("REDIS_RETRY_INTERVAL", 5, minimum=1)

if REDIS_URL:
    # config/cache.py: Redis with the timeouts above, served from a process-local fallback while Redis is away
    # (throttles and job marks count per process during an outage; its docstring says what else degrades).
    CACHES = {
        "default": {
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                "retry_interval": REDIS_RETRY_INTERVAL,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions live in the database alone (Django's default ``db`` engine), with or without Redis: a Redis outage
# cannot sign anyone out or lose a session, and a sign-out is one DELETE that no cache can undo (with
# ``cached_db``, a sign-out whose cache delete failed during an outage would find the session alive in Redis once
# it returned). Cost: a primary-key read per request instead of a Redis GET, measured at 0.9 ms vs 0.3 ms (p50).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Without a broker, jobs run in-process: an explicit choice made here, never a fallback when Redis is down.
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
# Publishing a job is one attempt: a dead broker refuses it at once, a frozen one costs REDIS_SOCKET_TIMEOUT; then
# the caller decides (labeling/queueing.py: logged and caught up later, or a 503 for an import). A retry would only add
# timeouts: a pooled connection that broke since its last use is replaced without one (a publish right after a
# Redis restart succeeds), and each retry against a frozen broker waits for the timeout again (3.2 s with one).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "concord")
# The jobs' names of the previous release, as aliases: messages it queued still run after an upgrade.
CELERY_IMPORTS = ("config.legacy_jobs",)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Jobs are idempotent: acknowledge after they finish so a killed worker's job is redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=2)
# A message a worker took and never acknowledged (the worker was killed) goes back to the queue this long after it
# was delivered, even if a worker still runs it: a quality recompute delivered twice waits for the first at its lock
# and stores the same result; an import's second delivery leaves the job to the worker running it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 300, minimum=1),
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
}
# An import that meets a transient error (database or Redis unavailable) is retried by its worker this many times,
# after a wait of IMPORT_RETRY_BACKOFF seconds that doubles each time (its second half random), before it is
# recorded as failed: by default 5 retries within 1.3 to 2.6 minutes, longer than a PostgreSQL restart takes.
IMPORT_RETRY_MAX = env_int("IMPORT_RETRY_MAX", 5, minimum=0)
IMPORT_RETRY_BACKOFF = env_int("IMPORT_RETRY_BACKOFF", 5, minimum=1)
CELERY_TIMEZONE = "UTC"
# Judgments queue a (coalesced) quality recompute of their project. The test suite turns this off except where it
# tests the trigger itself, so that thousands of test judgments do not each recompute in-process.
QUALITY_RECOMPUTE_ON_COMMIT = env_bool("QUALITY_RECOMPUTE_ON_COMMIT", True)

CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Leases stop counting the moment they expire; this records the state (audits, the admin) and releases the live
    # leases of annotators paused since (their slots free within a minute).
    "expire-leases": {"task": "routing.jobs.expire_leases_job", "schedule": 60.0},
    # Recomputes quality wherever judgments are newer than the latest snapshot: catches jobs lost with a broker.
    "sweep-quality": {"task": "quality.jobs.sweep_quality_job", "schedule": 600.0},
}

# --- Auth ---------------------------------------------------------------------------------------------------
# Sign-in throttling (labeling/logins.py): failures per account and per address within a window of seconds.
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 900, minimum=1)
# Password-reset requests (every one counts, whether or not the address has an account), per address asked for and
# per client address, within the same window.
PASSWORD_RESETS_PER_ACCOUNT = env_int("PASSWORD_RESETS_PER_ACCOUNT", 3, minimum=1)
PASSWORD_RESETS_PER_ADDRESS = env_int("PASSWORD_RESETS_PER_ADDRESS", 20, minimum=1)
# Invitation links (labeling/invitations.py) work once, for this many days after they are sent (or resent).
INVITATION_MAX_AGE_DAYS = env_int("INVITATION_MAX_AGE_DAYS", 7, minimum=1, maximum=90)
# Reverse proxies in front of the app that append the client's address to X-Forwarded-For (0: none).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "work"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    # Nothing is public by default: an organization API key (Authorization: Bearer) or a signed-in admin's session
    # (with CSRF). Every API view derives from api.base.TenantAPIView, which scopes to the organization.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.ApiKeyAuthentication",
        "api.auth.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.OrganizationAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["api.auth.CallerRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env_str("API_THROTTLE_RATE", "6000/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.base.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # ?format= names an import's or export's data format here, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
# Imports: a body larger than this is refused with 413 before anything is read.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 2 * 1024**3, minimum=1)
# An import runs in the request when its estimated work (its size over the typical row of its kind, times the
# measured time per row: exchange/reading.py) is at most IMPORT_SYNC_SECONDS and its body at most
# IMPORT_ASYNC_BYTES; otherwise (or with ?async=1) the body is saved to IMPORT_DIR and imported by a Celery worker:
# the API answers 202 with the job's URL. ?async=0 asks for the request whatever the estimate. IMPORT_DIR must be
# shared between the web and worker machines.
IMPORT_ASYNC_BYTES = env_int("IMPORT_ASYNC_BYTES", 64 * 1024**2, minimum=1)
IMPORT_SYNC_SECONDS = env_int("IMPORT_SYNC_SECONDS", 10, minimum=0)
# An import still running in the request after this many seconds is rolled back (nothing written) and answered
# with 503 naming ?async=1, so the client always gets an answer: keep it below the web server's worker timeout
# (gunicorn --timeout) and any proxy's read timeout.
IMPORT_SYNC_MAX_SECONDS = env_int("IMPORT_SYNC_MAX_SECONDS", 45, minimum=1)
IMPORT_DIR = Path(env_str("IMPORT_DIR", str(VAR_DIR / "imports")))

# Exports hold tasks completed at least this long ago, so that a `since` pull cannot miss a task whose completing
# judgment committed late; the newest ones come with the next pull.
EXPORT_SETTLE_SECONDS = env_int("EXPORT_SETTLE_SECONDS", 60, minimum=0)

SPECTACULAR_SETTINGS = {
    "TITLE": "Concord API",
    "DESCRIPTION": "Import tasks and judgments, read quality, export TRL-ready datasets. Authenticate with "
    "`Authorization: Bearer <organization API key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["api.auth.OrganizationAccess"],
    "SERVE_AUTHENTICATION": [
        "api.auth.ApiKeyAuthentication",
        "api.auth.CsrfSessionAuthentication",
    ],
    # Swagger UI's files come from the drf-spectacular-sidecar package (served by whitenoise): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents the API's error answers (400, 401, 403, 404, 429) from one place.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.error_responses_document",
    ],
}

# --- E-mail -------------------------------------------------------------------------------------------------
# Invitations and password resets are e-mailed by Celery jobs. With DEBUG the console backend prints them (make
# demo); otherwise SMTP from EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
# EMAIL_USE_SSL and EMAIL_TIMEOUT (config/env.py: env_smtp_options), as Django 6.1's MAILERS. Links in e-mails
# start at SITE_URL (e.g. https://labels.example.com; set it in production), else at the address each request
# came to.
MAILERS = {
    "default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if DEBUG
    else {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": env_smtp_options()}
}
DEFAULT_FROM_EMAIL = env_email_address("DEFAULT_FROM_EMAIL", "Concord <concord@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SITE_URL = env_site_url("SITE_URL")

# --- Internationalisation -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files a browser asks for at the site's root (/favicon.ico), served by WhiteNoise like the static files.
WHITENOISE_ROOT = BASE_DIR / "public"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security headers (all on in production; `manage.py check --deploy` is clean) ---------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that strips and sets X-Forwarded-Proto itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Every record is printed once, by the root's handler: Django's own "django" logger gets no handler of its own (by
# default it has a console handler under DEBUG and also propagates to the root, which printed each line twice).
# "django.server" (runserver's access log) keeps Django's formatter and does not propagate.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "config.log_filters.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["client_errors_without_traceback"]},
    },
    "loggers": {"django": {"handlers": [], "level": LOG_LEVEL, "propagate": True}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
