"""The worker's broker configuration, read from the environment (DESIGN §3).

Pure code: a mapping of environment variables in, a WorkerConfig or a
ConfigError naming the setting out. No broker configured at all means the
embedded in-process broker (``memory://``) that the demo uses.
"""

import json
import re
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit, urlunsplit

HGPUSH_EXCHANGE = "exchange/hgpushes/v2"
TASK_COMPLETED_EXCHANGE = "exchange/taskcluster-queue/v1/task-completed"
DEFAULT_ROUTES = ("route.project.l10n.elmo.v1",)
DEFAULT_ROOT_URL = "https://firefox-ci-tc.services.mozilla.com"
EMBEDDED_BROKER = "memory://localhost/"
SCHEMES = ("amqp", "amqps", "memory")


class ConfigError(Exception):
    """Configuration that cannot work; the message names the setting."""


@dataclass(frozen=True)
class WorkerConfig:
    broker_url: str
    user: str
    declare_exchanges: bool = False
    queue_expires_seconds: int = 7 * 24 * 3600
    prefetch: int = 20
    heartbeat: int = 60
    retry_delays: tuple[int, ...] = (10, 60, 300)
    max_retries: int = 48
    task_routes: tuple[str, ...] = DEFAULT_ROUTES
    # The Taskcluster deployment whose completions arrive on this broker.
    root_url: str = DEFAULT_ROOT_URL
    consume_hgmo: bool = True
    # Other deployments (e.g. the community cluster), each on its own broker or vhost: tasks only.
    extra_sources: tuple["WorkerConfig", ...] = ()

    @property
    def embedded(self):
        return self.broker_url.startswith("memory://")

    @property
    def safe_url(self):
        return mask_password(self.broker_url)

    def queue_name(self, suffix):
        return f"queue/{self.user}/{suffix}"

    @property
    def own_exchange(self):
        """Where retries wait and come back from; Pulse lets a user own exchange/<user>/…"""
        return f"exchange/{self.user}/worker"


def mask_password(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


def _bool(environ, name, default):
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _int(environ, name, default, minimum=0):
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return number


def _list(environ, name, default):
    value = environ.get(name)
    if value is None:
        return default
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise ConfigError(f"{name} is set but names nothing")
    return items


def broker_url(environ):
    if "PULSE_URL" in environ:
        url = environ["PULSE_URL"].strip()
        if not url:
            raise ConfigError("PULSE_URL is set but empty (unset it to use the PULSE_* settings)")
        scheme = urlsplit(url).scheme
        if scheme not in SCHEMES:
            raise ConfigError(f"PULSE_URL must start with amqp://, amqps:// or memory://, not {scheme or url!r}")
        if scheme != "memory" and not urlsplit(url).username:
            raise ConfigError("PULSE_URL names no user (amqp://USER:PASSWORD@HOST/)")
        return url
    pulse_settings = ("PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "PULSE_PORT", "PULSE_VHOST", "PULSE_SSL")
    if not any(environ.get(name) for name in pulse_settings):
        return EMBEDDED_BROKER
    for name in ("PULSE_USER", "PULSE_PASSWORD"):
        if not environ.get(name):
            raise ConfigError(f"{name} is required to connect to a Pulse broker")
    ssl = _bool(environ, "PULSE_SSL", True)
    host = environ.get("PULSE_HOST") or "pulse.mozilla.org"
    port = _int(environ, "PULSE_PORT", 5671 if ssl else 5672, minimum=1)
    vhost = environ.get("PULSE_VHOST") or "/"
    credentials = f"{quote(environ['PULSE_USER'], safe='')}:{quote(environ['PULSE_PASSWORD'], safe='')}"
    return f"{'amqps' if ssl else 'amqp'}://{credentials}@{host}:{port}/{quote(vhost, safe='')}"


def _root_url(value, setting):
    parts = urlsplit(value or "")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"{setting} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _extra_sources(environ, main):
    """TASKCLUSTER_EXTRA_SOURCES: a JSON list of {"pulse_url", "root_url", "routes"}."""
    text = environ.get("TASKCLUSTER_EXTRA_SOURCES", "").strip()
    if not text:
        return ()
    try:
        entries = json.loads(text)
    except ValueError:
        raise ConfigError("TASKCLUSTER_EXTRA_SOURCES is not JSON") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("TASKCLUSTER_EXTRA_SOURCES must be a list of objects")
    sources = []
    for index, entry in enumerate(entries):
        setting = f"TASKCLUSTER_EXTRA_SOURCES[{index}]"
        url = broker_url({"PULSE_URL": str(entry.get("pulse_url", ""))})
        routes = entry.get("routes", list(DEFAULT_ROUTES))
        if not isinstance(routes, list) or not routes or not all(isinstance(r, str) and r for r in routes):
            raise ConfigError(f"{setting}.routes must be a non-empty list of routing keys")
        sources.append(
            replace(
                main,
                broker_url=url,
                user=urlsplit(url).username or "local",
                task_routes=tuple(routes),
                root_url=_root_url(entry.get("root_url"), f"{setting}.root_url"),
                consume_hgmo=False,
                extra_sources=(),
            )
        )
    return tuple(sources)


def load_config(environ):
    url = broker_url(environ)
    user = "local" if url.startswith("memory://") else urlsplit(url).username
    delays = _list(environ, "PULSE_RETRY_DELAYS", ("10", "60", "300"))
    if not all(re.fullmatch(r"[0-9]{1,6}", delay) and int(delay) > 0 for delay in delays):
        raise ConfigError(f"PULSE_RETRY_DELAYS must be positive seconds separated by commas, not {delays!r}")
    main = WorkerConfig(
        broker_url=url,
        user=user,
        declare_exchanges=_bool(environ, "PULSE_DECLARE_EXCHANGES", False),
        queue_expires_seconds=_int(environ, "PULSE_QUEUE_EXPIRES", 7 * 24 * 3600, minimum=60),
        prefetch=_int(environ, "PULSE_PREFETCH", 20, minimum=1),
        heartbeat=_int(environ, "PULSE_HEARTBEAT", 60),
        retry_delays=tuple(int(delay) for delay in delays),
        max_retries=_int(environ, "PULSE_MAX_RETRIES", 48, minimum=1),
        task_routes=_list(environ, "TASKCLUSTER_ROUTES", DEFAULT_ROUTES),
        root_url=_root_url(environ.get("TASKCLUSTER_ROOT_URL") or DEFAULT_ROOT_URL, "TASKCLUSTER_ROOT_URL"),
    )
    return replace(main, extra_sources=_extra_sources(environ, main))
