"""Django settings for Stratum, read from environment variables only, with safe local defaults."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STRATUM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret_key() -> str:
    """Return a per-checkout random key kept in var/, so a demo never runs on a published key."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Transport security is on whenever a real SECRET_KEY is supplied (a deployment), off for the local demo
# served over plain HTTP on loopback; STRATUM_HTTPS overrides either way.
HTTPS = env_bool("STRATUM_HTTPS", bool(os.environ.get("SECRET_KEY")) and not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("STRATUM_BEHIND_PROXY", False) else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # OpClass in index expressions: the trigram indexes of word search (none on SQLite)
    "rest_framework",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "registry",
    "governance",
    "deployments",
    "stratum.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "stratum.controls.ControlCharacterMiddleware",
    "stratum.errors.DatabaseBusyMiddleware",  # pages and /serve/ answer 503 + Retry-After on a busy database
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "governance.middleware.RequestContextMiddleware",
    "deployments.monitor.EmbeddedMonitorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into registry.lockouts' answer
]

ROOT_URLCONF = "stratum.urls"
WSGI_APPLICATION = "stratum.wsgi.application"
ASGI_APPLICATION = "stratum.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "governance.context_processors.review_badge",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file in var/. On SQLite every transaction begins IMMEDIATE: a writer takes
# the write lock when its transaction opens and waits for it up to `timeout` seconds (SQLite's busy handler),
# instead of failing mid-transaction when a read lock cannot be upgraded. WAL lets readers go on while one
# writer writes; synchronous=NORMAL is WAL's durable-on-checkpoint mode (a power cut may lose the last commits,
# never the database).
_default_sqlite = f"sqlite:///{VAR_DIR / 'stratum.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _default_sqlite, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so threads and live servers share it; one per process so parallel runs never collide.
    import tempfile

    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"stratum-test-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("STRATUM_PG_PREPARED", True):
    # Server-side binding lets psycopg prepare repeated queries: planning, not execution, dominated the hot reads.
    # Behind PgBouncer in transaction mode this needs 1.21+ with max_prepared_statements, or STRATUM_PG_PREPARED=false.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
# On PostgreSQL, a statement or a lock wait that outlasts these fails (the APIs answer 503 DATABASE_BUSY with
# Retry-After) instead of holding a worker for as long as another transaction holds the lock; 0 turns either off
# (e.g. for a long migration, or behind a PgBouncer that refuses the `options` start-up parameter).
DB_STATEMENT_TIMEOUT_MS = int(os.environ.get("STRATUM_DB_STATEMENT_TIMEOUT_MS", "30000"))
DB_LOCK_TIMEOUT_MS = int(os.environ.get("STRATUM_DB_LOCK_TIMEOUT_MS", "10000"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["connect_timeout"] = int(os.environ.get("STRATUM_DB_CONNECT_TIMEOUT", "5"))  # libpq: at least 2
    _startup = [f"-c {name}={ms}" for name, ms in (("statement_timeout", DB_STATEMENT_TIMEOUT_MS),
                                                   ("lock_timeout", DB_LOCK_TIMEOUT_MS)) if ms > 0]
    if _startup:
        _pg_options["options"] = " ".join([_pg_options.get("options", ""), *_startup]).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes): every password check (login page, admin, HTTP basic on both APIs) counts, per
# account and per client address; at STRATUM_LOGIN_FAILURE_LIMIT failures that account, and that address, are
# refused for STRATUM_LOGIN_LOCKOUT_MINUTES. Tries refused while locked do not extend the lockout. Counts live in
# the shared cache (no request body is read or stored for a failure). Tokens are never throttled.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("STRATUM_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = int(os.environ.get("STRATUM_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("STRATUM_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CLIENT_IP_CALLABLE = "registry.lockouts.client_ip"
AXES_USERNAME_CALLABLE = "registry.lockouts.client_username"
AXES_LOCKOUT_CALLABLE = "registry.lockouts.lockout_response"
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "registry:model-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# plotly.js is served from the plotly package itself (no CDN, no vendored copy in the repository).
import plotly as _plotly  # noqa: E402

STATICFILES_DIRS = [BASE_DIR / "static", ("vendor", Path(_plotly.__file__).parent / "package_data")]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Artifacts: content-addressed blobs on local disk by default, S3-compatible storage when configured.
ARTIFACT_ROOT = Path(os.environ.get("STRATUM_ARTIFACT_ROOT", VAR_DIR / "artifacts"))
MAX_UPLOAD_BYTES = int(os.environ.get("STRATUM_MAX_UPLOAD_BYTES", str(2 * 1024**3)))
if os.environ.get("STRATUM_S3_BUCKET"):
    from stratum.s3 import storage_options

    _artifacts_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": storage_options(
            bucket=os.environ["STRATUM_S3_BUCKET"], endpoint_url=os.environ.get("STRATUM_S3_ENDPOINT_URL"),
            region=os.environ.get("STRATUM_S3_REGION"), prefix=os.environ.get("STRATUM_S3_PREFIX", "artifacts"),
            addressing_style=os.environ.get("STRATUM_S3_ADDRESSING_STYLE", "path")),
    }
else:
    _artifacts_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT), "base_url": None},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "artifacts": _artifacts_storage,
}
# Downloads answer 302 to a presigned URL of the object store, valid this many seconds, instead of streaming the
# bytes through the web process (only with S3-compatible storage; permission and quarantine are checked first).
STRATUM_DIRECT_DOWNLOADS = env_bool("STRATUM_DIRECT_DOWNLOADS", False)
STRATUM_DIRECT_DOWNLOAD_SECONDS = int(os.environ.get("STRATUM_DIRECT_DOWNLOAD_SECONDS", "60"))
# Model-version sources may name these object-store prefixes besides models:/, runs:/ and mlflow-artifacts:/
# (Stratum stores the string; it never fetches it). Narrow it in a deployment, e.g. "s3://team-models/".
STRATUM_ALLOWED_SOURCE_PREFIXES = env_list("STRATUM_ALLOWED_SOURCE_PREFIXES", "s3://,gs://,wasbs://,abfss://")
# Uploaded files spool to disk past 1 MiB; Stratum's own handler hashes while writing.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
FILE_UPLOAD_HANDLERS = ["registry.artifacts.uploads.HashingUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Celery: a broker when REDIS_URL is set; otherwise tasks run in-process, eagerly.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("STRATUM_BROKER_CONNECT_TIMEOUT", "3"))
# A message that cannot be published fails at once instead of retrying the connection (about 6 s per call): the job
# row is the queue and the sweeper sends it later (registry/pipeline/jobs.py). Workers reconnect on their own terms.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("STRATUM_CELERY_QUEUE", "celery")  # tests isolate their workers by queue
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {"task": "governance.tasks.audit_checkpoint_create",
                         "schedule": float(os.environ.get("STRATUM_AUDIT_CHECKPOINT_SECONDS", "3600"))},
    "promotion-expiry": {"task": "governance.tasks.promotion_expire_stale", "schedule": 3600.0},
}

# Artifact pipeline (registry/pipeline): job sweeper cadence and staleness, static scan limits, sandboxed loads.
# A running job's heartbeat is refreshed every STALE/6 seconds; silent for STALE, it is swept (every SWEEP seconds)
# and run again, so a killed worker's job restarts within STALE + SWEEP. A dispatched job still queued after
# REDISPATCH is sent again (its message may have been lost). After a failed dispatch a process sends nothing for
# DISPATCH_PAUSE seconds. Transient database errors retry after RETRY_BASE * 2^(attempt-1) seconds.
STRATUM_JOB_STALE_SECONDS = float(os.environ.get("STRATUM_JOB_STALE_SECONDS", "30"))
STRATUM_JOB_SWEEP_SECONDS = float(os.environ.get("STRATUM_JOB_SWEEP_SECONDS", "15"))
STRATUM_JOB_REDISPATCH_SECONDS = float(os.environ.get("STRATUM_JOB_REDISPATCH_SECONDS", "120"))
STRATUM_JOB_DISPATCH_PAUSE_SECONDS = float(os.environ.get("STRATUM_JOB_DISPATCH_PAUSE_SECONDS", "10"))
STRATUM_JOB_RETRY_BASE_SECONDS = float(os.environ.get("STRATUM_JOB_RETRY_BASE_SECONDS", "2"))
STRATUM_JOB_TEST_DELAY_SECONDS = float(os.environ.get("STRATUM_JOB_TEST_DELAY_SECONDS", "0"))
STRATUM_SCAN_MAX_BYTES = int(os.environ.get("STRATUM_SCAN_MAX_BYTES", str(2 * 1024**3)))
STRATUM_SCAN_TIMEOUT_SECONDS = float(os.environ.get("STRATUM_SCAN_TIMEOUT_SECONDS", "120"))
STRATUM_LOAD_CPU_SECONDS = int(os.environ.get("STRATUM_LOAD_CPU_SECONDS", "60"))
STRATUM_LOAD_MEMORY_BYTES = int(os.environ.get("STRATUM_LOAD_MEMORY_BYTES", str(4 * 1024**3)))
# The sandbox child's largest file (its copy of the input, the ONNX it writes) and its wall-clock limit.
STRATUM_LOAD_FILE_BYTES = int(os.environ.get("STRATUM_LOAD_FILE_BYTES", str(4 * 1024**3)))
STRATUM_LOAD_WALL_SECONDS = float(os.environ.get("STRATUM_LOAD_WALL_SECONDS", str(2 * STRATUM_LOAD_CPU_SECONDS)))
STRATUM_CONVERT_ON_UPLOAD = env_bool("STRATUM_CONVERT_ON_UPLOAD", False)
# Webhook targets on loopback/private/link-local networks are refused unless listed here (CIDRs, comma-separated).
STRATUM_WEBHOOK_ALLOWED_NETWORKS = env_list("STRATUM_WEBHOOK_ALLOWED_NETWORKS", "")
STRATUM_WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("STRATUM_WEBHOOK_BACKOFF_SECONDS", "5"))
CELERY_BEAT_SCHEDULE["pipeline-jobs-sweep"] = {
    "task": "registry.tasks.jobs_sweep", "schedule": STRATUM_JOB_SWEEP_SECONDS}
# Spool files and job scratch folders (stratum-* in the temporary folder) untouched this long are removed by a sweep
# every STRATUM_TEMP_SWEEP_SECONDS: what killed processes left behind.
STRATUM_TEMP_MAX_AGE_SECONDS = float(os.environ.get("STRATUM_TEMP_MAX_AGE_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE["pipeline-temp-sweep"] = {
    "task": "registry.tasks.temp_sweep", "schedule": float(os.environ.get("STRATUM_TEMP_SWEEP_SECONDS", "900"))}
# When the scanner's rules change (its version string), stored files are rescanned in batches of RESCAN_BATCH jobs.
STRATUM_RESCAN_BATCH = int(os.environ.get("STRATUM_RESCAN_BATCH", "500"))
CELERY_BEAT_SCHEDULE["pipeline-scanner-rescan"] = {
    "task": "registry.tasks.scanner_rescan_tick",
    "schedule": float(os.environ.get("STRATUM_RESCAN_TICK_SECONDS", "60"))}
# Blob garbage collection: a blob nothing refers to is marked by the first collection that finds it so, and deleted by
# the first one after STRATUM_GC_GRACE_SECONDS more (the grace must outlast a backup's copy: see README); every
# STRATUM_GC_SECONDS (0 turns the periodic collection off; `manage.py gc_artifacts` runs one by hand).
STRATUM_GC_GRACE_SECONDS = float(os.environ.get("STRATUM_GC_GRACE_SECONDS", "86400"))
STRATUM_GC_SECONDS = float(os.environ.get("STRATUM_GC_SECONDS", "21600"))
if STRATUM_GC_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["artifact-store-collect"] = {"task": "registry.tasks.store_collect",
                                                      "schedule": STRATUM_GC_SECONDS}
CELERY_BEAT_SCHEDULE["pipeline-signatures-verify"] = {
    "task": "registry.tasks.signatures_verify_all",
    "schedule": float(os.environ.get("STRATUM_SIGNATURE_VERIFY_SECONDS", "86400"))}

# Governance: the EC P-256 key that signs audit checkpoints (PEM text or a file path; when unset, a development
# key is generated into var/signing_key.pem), and how long a promotion request may stay undecided.
STRATUM_SIGNING_KEY = os.environ.get("STRATUM_SIGNING_KEY", "")
PROMOTION_EXPIRY_DAYS = int(os.environ.get("STRATUM_PROMOTION_EXPIRY_DAYS", "14"))
# HMAC key for data-subject hashes (GDPR erasure); derived from SECRET_KEY when unset. Changing it orphans old hashes.
STRATUM_SUBJECT_HASH_KEY = os.environ.get("STRATUM_SUBJECT_HASH_KEY", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.authentication.BearerTokenAuthentication",
        "registry.authentication.BasicAuthentication",
        "registry.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "registry.api.parsers.BoundedJSONParser",
        "registry.api.parsers.SpoolingMultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stratum API",
    "DESCRIPTION": "Native REST API of the Stratum model registry.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"PromotionTargetKindEnum": "governance.models.TargetKind"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "registry.api.schema.document_error_responses",
    ],
}

# Content-Security-Policy on every response (django-csp): scripts and styles from this origin only (no inline
# script, no inline <style>), Plotly figures as non-executable JSON (json_script), no plugins, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

if not DEBUG and os.environ.get("SECRET_KEY", "").startswith("django-insecure"):
    raise ImproperlyConfigured("SECRET_KEY must be a real secret when DEBUG is off.")

# Cache: the registry's cached-read generations (registry/caching.py), the gateway's rate limits, the audit verdict.
# Every serving process must share it: Redis when REDIS_URL is set; else, when several processes serve on one host,
# Django's file-based cache in var/cache; else (one process: runserver, tests, commands) local memory.
# STRATUM_CACHE (memory or file) says which; unset, it is `file` under uWSGI with more than one process.


def _several_uwsgi_processes() -> bool:
    """True inside a uWSGI server running more than one process (its `uwsgi` module exists only there)."""
    try:
        import uwsgi  # present only when uWSGI runs this interpreter
    except ImportError:
        return False
    return uwsgi.numproc > 1


STRATUM_CACHE = os.environ.get("STRATUM_CACHE") or ("file" if _several_uwsgi_processes() else "memory")
# A dead or unanswering Redis must cost a request milliseconds: short socket timeouts (no retries: Django's pool
# gives its connections none), and callers fall back (rate limits per process, registry reads from the database).
CACHE_TIMEOUT_SECONDS = float(os.environ.get("STRATUM_CACHE_TIMEOUT_SECONDS", "0.5"))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "stratum",
                          "OPTIONS": {"socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
                                      "socket_timeout": CACHE_TIMEOUT_SECONDS}}}
elif STRATUM_CACHE == "file":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache"), "OPTIONS": {"MAX_ENTRIES": 10_000}}}
elif STRATUM_CACHE == "memory":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "OPTIONS": {"MAX_ENTRIES": 10_000}}}
else:
    raise ImproperlyConfigured("STRATUM_CACHE must be 'memory' or 'file' (set REDIS_URL for Redis).")
# Each process's own copies of the registry's cached reads, stored under generations kept in the shared default.
CACHES["local"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "stratum-local-reads",
                   "OPTIONS": {"MAX_ENTRIES": 5_000}}

# django-axes warns (axes.W001) about every cache but Redis and Memcached. Local memory serves one process, whose
# count it keeps exactly (its incr holds a lock), so the warning is silenced there only; the file cache, shared by
# several processes, increments by read-then-write and may miss a few concurrent failures: set REDIS_URL there.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache":
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]

# Deployments: the serving gateway and the rollout monitor.
STRATUM_SERVING_MAX_ROWS = int(os.environ.get("STRATUM_SERVING_MAX_ROWS", "10000"))
STRATUM_SERVING_RATE_PER_MINUTE = int(os.environ.get("STRATUM_SERVING_RATE_PER_MINUTE", "6000"))
STRATUM_SERVING_SAMPLE_RATE = float(os.environ.get("STRATUM_SERVING_SAMPLE_RATE", "0.01"))
# Gateway statistics are buffered in memory and written in batches this often (0: only when flushed explicitly).
STRATUM_SERVING_FLUSH_SECONDS = float(os.environ.get("STRATUM_SERVING_FLUSH_SECONDS", "1.0"))
# How stale a gateway process's routing may be before it checks the endpoint's generation again.
STRATUM_ROUTING_REFRESH_SECONDS = float(os.environ.get("STRATUM_ROUTING_REFRESH_SECONDS", "1.0"))
STRATUM_TOKEN_CACHE_SECONDS = float(os.environ.get("STRATUM_TOKEN_CACHE_SECONDS", "10"))
STRATUM_ROLLOUT_MONITOR_SECONDS = float(os.environ.get("STRATUM_ROLLOUT_MONITOR_SECONDS", "10"))
# Without a broker there is no beat: `make demo` sets this so the web process runs the rollout monitor itself.
STRATUM_EMBEDDED_MONITOR = env_bool("STRATUM_EMBEDDED_MONITOR", False)
CELERY_BEAT_SCHEDULE["registry-retrain-schedules"] = {
    "task": "registry.tasks.retrain_schedules_tick",
    "schedule": float(os.environ.get("STRATUM_RETRAIN_TICK_SECONDS", "60"))}
CELERY_BEAT_SCHEDULE["deployments-rollout-monitor"] = {
    "task": "deployments.tasks.rollout_monitor_tick", "schedule": STRATUM_ROLLOUT_MONITOR_SECONDS}
# Every answered request id traces back to what produced it (GET /api/v1/predictions/<id>) for this many days.
STRATUM_PREDICTION_RETENTION_DAYS = int(os.environ.get("STRATUM_PREDICTION_RETENTION_DAYS", "30"))
# A prediction batch (a lineage node) counts what one serving process answered per endpoint, version, routing role
# and generation in a window of this many seconds.
STRATUM_PREDICTION_BATCH_SECONDS = int(os.environ.get("STRATUM_PREDICTION_BATCH_SECONDS", "300"))
# Off: the gateway records no prediction batches and no request ids (no trace, no lineage past the deployment);
# statistics for the rollout monitor are kept either way. The serving benchmark measures its cost with it off.
STRATUM_PREDICTION_BATCHES = env_bool("STRATUM_PREDICTION_BATCHES", True)
CELERY_BEAT_SCHEDULE["deployments-prediction-records-purge"] = {
    "task": "deployments.tasks.prediction_records_purge", "schedule": 3600.0}


# Email (review notifications): the console backend unless an SMTP host is configured; tests use locmem.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(EMAIL_HOST))
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Stratum <stratum@localhost>")
STRATUM_BASE_URL = os.environ.get("STRATUM_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
