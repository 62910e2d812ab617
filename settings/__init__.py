"""Django settings, read from the environment (DESIGN §3).

Every knob an operator may turn is an environment variable; defaults make a
fresh checkout run on its own (SQLite and clones under ``var/``).
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
_engine = DATABASES["default"]["ENGINE"]
if _engine.endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Tests that run the worker as a subprocess need a file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # Waiting on the write lock beats failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
elif _engine.endswith("mysql"):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

# Where the local Mercurial clones live (shared storage with the web heads).
REPOSITORY_BASE = Path(os.environ.get("REPOSITORY_BASE") or VAR_DIR / "repos")
# Seconds any single HTTP request to hg.mozilla.org or Taskcluster may take.
HTTP_TIMEOUT = float(os.environ.get("HTTP_TIMEOUT", "30"))
# Seconds a clone or pull may take before it counts as a (transient) failure.
HG_TIMEOUT = float(os.environ.get("HG_TIMEOUT", "900"))
# The Taskcluster deployment whose queue is read, and the summary artifact's name.
TASKCLUSTER_ROOT_URL = os.environ.get("TASKCLUSTER_ROOT_URL") or "https://firefox-ci-tc.services.mozilla.com"
ELMO_ARTIFACT = os.environ.get("ELMO_ARTIFACT") or "public/elmo.json"
# Seconds the worker trusts its list of known repositories before re-reading it.
KNOWN_REPOSITORIES_TTL = float(os.environ.get("KNOWN_REPOSITORIES_TTL", "5"))
# Pushes read from json-pushes, and stored, per transaction.
PUSHLOG_PAGE_SIZE = int(os.environ.get("PUSHLOG_PAGE_SIZE", "200"))

# consume-pulse backfills every this many seconds (0: never), at most this many repositories a run (0: all).
BACKFILL_INTERVAL = float(os.environ.get("BACKFILL_INTERVAL", "900"))
BACKFILL_LIMIT = int(os.environ.get("BACKFILL_LIMIT", "0"))
# The health check fails when the consumer loop has not beaten for this long (> HG_TIMEOUT).
HEARTBEAT_FILE = Path(os.environ.get("HEARTBEAT_FILE") or VAR_DIR / "heartbeat")
HEALTHCHECK_MAX_AGE = float(os.environ.get("HEALTHCHECK_MAX_AGE", "1200"))
# Prometheus metrics of consume-pulse; 0 turns them off.
METRICS_PORT = int(os.environ.get("METRICS_PORT", "0"))

LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "worker.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "text"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

if os.environ.get("SENTRY_DSN"):
    import sentry_sdk

    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], send_default_pii=False)
