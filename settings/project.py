"""Every setting of the project, each parsed once from the environment (DESIGN §3).

Defaults make a fresh checkout run on its own (SQLite and clones under
``var/``, the embedded broker). A value that cannot work raises
ConfigurationError naming the variable; ``settings/__init__`` turns that into
one line and a non-zero exit for whatever command was starting. No other
module reads the environment.
"""

import os
from pathlib import Path

import dj_database_url

from plumbing.urls import normalise_root_url

from . import pulse
from .environment import ConfigurationError, Environment

env = Environment(os.environ)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.directory("VAR_DIR", BASE_DIR / "var")

# --- Django ---------------------------------------------------------------

SECRET_KEY = env.text("SECRET_KEY", None, pattern=r".{32,}", meaning="at least 32 characters")
DEBUG = env.boolean("DEBUG", False)
ALLOWED_HOSTS = env.hosts("ALLOWED_HOSTS", ()) or None
# A web head outside DEBUG refuses to start without its own key and host names (settings/wsgi.py says which);
# the worker and the commands sign nothing and answer no Host, so they run on the development defaults.
WEB_CONFIGURATION_ERRORS = tuple(
    f"{name} is required for a web head outside DEBUG ({why})"
    for name, value, why in (
        ("SECRET_KEY", SECRET_KEY, "it signs the admin's sessions"),
        ("ALLOWED_HOSTS", ALLOWED_HOSTS, "the host names it answers to"),
    )
    if value is None and not DEBUG
)
SECRET_KEY = SECRET_KEY or "dev-only-not-secret"
ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "life",
    "l10n",
    "worker",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "web.middleware.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "settings.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
# Collected at build time (the Dockerfile) and served by whitenoise from the WSGI app; without a
# collectstatic (a checkout, the tests) whitenoise serves them from the apps' folders.
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
WSGI_APPLICATION = "settings.wsgi.application"

# --- the database the web heads share -----------------------------------------


def _database(url):
    try:
        database = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    except ValueError as error:
        raise ConfigurationError(f"DATABASE_URL is not a database URL: {str(error).split('.')[0]}") from None
    engine = database["ENGINE"]
    if engine.endswith("sqlite3"):
        if database["NAME"] == ":memory:":
            raise ConfigurationError("DATABASE_URL must name a SQLite file, not an in-memory database")
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # Tests that run the worker as a subprocess need a file, not :memory:.
        database["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
        # Waiting on the write lock beats failing with "database is locked".
        database.setdefault("OPTIONS", {})["timeout"] = 30
    elif not database["NAME"]:
        raise ConfigurationError("DATABASE_URL names no database")
    elif engine.endswith("mysql"):
        database.setdefault("OPTIONS", {}).update({"charset": "utf8mb4", "isolation_level": "read committed"})
        database["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"}
    return database


DATABASES = {"default": _database(env.raw("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}

# --- Pulse ------------------------------------------------------------------

PULSE_URL = pulse.broker_url(env)
PULSE_USER = pulse.user_of(PULSE_URL)
# Declare the upstream exchanges instead of checking them (a local broker only).
PULSE_DECLARE_EXCHANGES = env.boolean("PULSE_DECLARE_EXCHANGES", False)
PULSE_QUEUE_EXPIRES = env.integer("PULSE_QUEUE_EXPIRES", 7 * 24 * 3600, minimum=60)
PULSE_PREFETCH = env.integer("PULSE_PREFETCH", 20, minimum=1, maximum=10_000)
PULSE_HEARTBEAT = env.integer("PULSE_HEARTBEAT", 60, minimum=0, maximum=3600)
PULSE_RETRY_DELAYS = pulse.retry_delays(env)
PULSE_MAX_RETRIES = env.integer("PULSE_MAX_RETRIES", 48, minimum=1, maximum=10_000)
# Deliveries of one message left unsettled (the worker died or could not decode it) before the broker parks it.
PULSE_DELIVERY_LIMIT = env.integer("PULSE_DELIVERY_LIMIT", 20, minimum=1, maximum=1000)
# Messages each of the worker's queues holds at most (the oldest give way): Pulse deletes a queue past 8,000.
PULSE_QUEUE_MAX_LENGTH = env.integer("PULSE_QUEUE_MAX_LENGTH", 4000, minimum=1, maximum=1_000_000)

# --- Taskcluster ------------------------------------------------------------

TASKCLUSTER_ROOT_URL = env.root_url("TASKCLUSTER_ROOT_URL", "https://firefox-ci-tc.services.mozilla.com")
TASKCLUSTER_ROUTES = env.items("TASKCLUSTER_ROUTES", ("route.project.l10n.elmo.v1",))
TASKCLUSTER_EXTRA_SOURCES = pulse.extra_sources(env, normalise_root_url, TASKCLUSTER_ROUTES)
ELMO_ARTIFACT = env.text(
    "ELMO_ARTIFACT", "public/elmo.json", pattern=r"public/[A-Za-z0-9_][A-Za-z0-9._/-]*",
    meaning="a public artifact name (public/…)",
)

# --- clones and upstream requests ---------------------------------------------

# Where the local clones live (shared storage with the web heads).
REPOSITORY_BASE = env.directory("REPOSITORY_BASE", VAR_DIR / "repos")
# The hg command; by default the one installed next to this interpreter, else the one on PATH.
HG_BINARY = env.executable("HG_BINARY", None)
# Seconds any single HTTP request to hg.mozilla.org or Taskcluster may take, all of it.
HTTP_TIMEOUT = env.seconds("HTTP_TIMEOUT", 30.0, minimum=0.1)
# Seconds one hg or git clone, pull, fetch or log may take before it counts as a (transient) failure.
VCS_TIMEOUT = env.seconds("VCS_TIMEOUT", None, minimum=1)
# Its old name, still read when VCS_TIMEOUT is not set; a line in the log says so (see DEPRECATIONS).
_HG_TIMEOUT = env.seconds("HG_TIMEOUT", None, minimum=1)
if VCS_TIMEOUT is None:
    VCS_TIMEOUT = 900.0 if _HG_TIMEOUT is None else _HG_TIMEOUT
# Seconds without a byte from upstream after which a clone, pull, fetch or HTTP request is given up as
# stalled (a transient failure): a hanging server costs this, not VCS_TIMEOUT, which stays for a first
# clone of a big repository that keeps sending.
VCS_STALL_TIMEOUT = env.seconds("VCS_STALL_TIMEOUT", 60.0, minimum=1)
# Pushes per json-pushes request.
PUSHLOG_PAGE_SIZE = env.integer("PUSHLOG_PAGE_SIZE", 1000, minimum=1, maximum=100_000)
# Bytes of one localization file a computed comparison reads; a bigger one is a parse error of its locale.
COMPARE_MAX_FILE_BYTES = env.integer("COMPARE_MAX_FILE_BYTES", 2_000_000, minimum=1)
# Seconds a message announcing a push upstream does not have yet (a lagging mirror) is retried.
UPSTREAM_LAG_LIMIT = env.seconds("UPSTREAM_LAG_LIMIT", 600.0, minimum=0)
# Seconds the worker trusts its list of known repositories before re-reading it.
KNOWN_REPOSITORIES_TTL = env.seconds("KNOWN_REPOSITORIES_TTL", 5.0)

# --- running the worker -------------------------------------------------------

# consume-pulse backfills every this many seconds (0: never), at most this many repositories a run (0: all).
BACKFILL_INTERVAL = env.seconds("BACKFILL_INTERVAL", 900.0)
# Handler threads of one consume-pulse: repositories worked on at once (worker/lanes.py).
WORKER_THREADS = env.integer("WORKER_THREADS", 4, minimum=1, maximum=64)
BACKFILL_LIMIT = env.integer("BACKFILL_LIMIT", 0)
# Days a dead letter is kept once resolved (replayed), and unresolved; the worker prunes daily (prune-dead-letters).
DEAD_LETTER_RETENTION = env.integer("DEAD_LETTER_RETENTION", 90, minimum=1, maximum=36_500)
DEAD_LETTER_RETENTION_UNRESOLVED = env.integer("DEAD_LETTER_RETENTION_UNRESOLVED", 365, minimum=1, maximum=36_500)
# The health check fails when the consumer loop has not beaten for this long (> VCS_TIMEOUT).
HEARTBEAT_FILE = env.file("HEARTBEAT_FILE", VAR_DIR / "heartbeat")
HEALTHCHECK_MAX_AGE = env.seconds("HEALTHCHECK_MAX_AGE", 1200.0, minimum=1)
# Prometheus metrics of consume-pulse; 0 turns them off.
METRICS_PORT = env.integer("METRICS_PORT", 0, maximum=65535)

LOG_FORMAT = env.choice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "plumbing.logs.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "plumbing.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

SENTRY_DSN = env.url("SENTRY_DSN", None, ("https", "http"))
if SENTRY_DSN:
    import sentry_sdk

    try:
        sentry_sdk.init(dsn=SENTRY_DSN, send_default_pii=False)
    except ValueError as error:  # sentry_sdk.utils.BadDsn
        raise ConfigurationError(f"SENTRY_DSN is not a Sentry DSN: {error}") from None

# Old names still read, as lines the log shows at start (life's AppConfig writes them).
DEPRECATIONS = tuple(
    f"{old} is deprecated: name it {new} (which wins when both are set)"
    for old, new, value in (("HG_TIMEOUT", "VCS_TIMEOUT", _HG_TIMEOUT),)
    if value is not None
)

# What the project read from the environment: the README's table lists exactly these.
ENVIRONMENT_VARIABLES = tuple(env.names)
