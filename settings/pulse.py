"""Where Pulse is (DESIGN §3): one URL, or the PULSE_* parts; no broker configured is the embedded one.

Pulse names every queue ``queue/<user>/…``, so the user is part of the
worker's identity and must be a plain name.
"""

import re
from urllib.parse import quote, unquote, urlsplit

from .environment import ConfigurationError

EMBEDDED_BROKER = "memory://localhost/"
SCHEMES = ("amqp", "amqps", "memory")
PARTS = ("PULSE_USER", "PULSE_PASSWORD", "PULSE_HOST", "PULSE_PORT", "PULSE_SSL", "PULSE_VHOST")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_DNS_NAME = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?"


def _checked_user(user, setting):
    if not _USER.match(user or ""):
        raise ConfigurationError(f"{setting} must be a Pulse user name (letters, digits, . _ -), not {user!r}")
    return user


def url_from(value, setting):
    """A PULSE_URL-like value, checked."""
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(f"{setting} must start with amqp://, amqps:// or memory://, not {value!r}")
    if parts.scheme != "memory":
        if not parts.hostname:
            raise ConfigurationError(f"{setting} names no host")
        if not parts.username:
            raise ConfigurationError(f"{setting} names no user (amqp://USER:PASSWORD@HOST/)")
        _checked_user(unquote(parts.username), f"the user in {setting}")
    return value


def broker_url(env):
    """PULSE_URL if set; else one built from the PULSE_* parts; else the embedded broker."""
    url = env.raw("PULSE_URL")
    ssl = env.boolean("PULSE_SSL", True)
    user = env.text("PULSE_USER")
    password = env.raw("PULSE_PASSWORD")
    host = env.text("PULSE_HOST", "pulse.mozilla.org", pattern=_DNS_NAME, meaning="a host name")
    port = env.integer("PULSE_PORT", 5671 if ssl else 5672, minimum=1, maximum=65535)
    vhost = env.text("PULSE_VHOST", "/", pattern=r"[!-~]{1,255}", meaning="a virtual host name")
    if url is not None:
        return url_from(url, "PULSE_URL")
    if not any(env.raw(name) for name in PARTS):
        return EMBEDDED_BROKER
    for name, value in (("PULSE_USER", user), ("PULSE_PASSWORD", password)):
        if not value:
            raise ConfigurationError(f"{name} is required to connect to a Pulse broker")
    credentials = f"{quote(_checked_user(user, 'PULSE_USER'), safe='')}:{quote(password, safe='')}"
    return f"{'amqps' if ssl else 'amqp'}://{credentials}@{host}:{port}/{quote(vhost, safe='')}"


def user_of(url):
    """The Pulse user a broker URL logs in as ("local" for the embedded broker)."""
    return "local" if url.startswith("memory:") else unquote(urlsplit(url).username)


def retry_delays(env):
    delays = env.items("PULSE_RETRY_DELAYS", ("10", "60", "300"))
    if not all(re.fullmatch(r"[0-9]{1,6}", delay) and int(delay) > 0 for delay in delays):
        raise ConfigurationError(
            f"PULSE_RETRY_DELAYS must be positive whole seconds separated by commas, not {','.join(delays)!r}"
        )
    return tuple(int(delay) for delay in delays)


def extra_sources(env, normalise_root_url, default_routes):
    """TASKCLUSTER_EXTRA_SOURCES: a JSON list of {"pulse_url", "root_url", "routes"}, checked."""
    entries = env.json("TASKCLUSTER_EXTRA_SOURCES", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigurationError("TASKCLUSTER_EXTRA_SOURCES must be a JSON list of objects")
    sources = []
    for index, entry in enumerate(entries):
        setting = f"TASKCLUSTER_EXTRA_SOURCES[{index}]"
        unknown = set(entry) - {"pulse_url", "root_url", "routes"}
        if unknown:
            raise ConfigurationError(f"{setting} has unknown keys {sorted(unknown)}")
        routes = entry.get("routes", list(default_routes))
        if not isinstance(routes, list) or not routes or not all(isinstance(r, str) and r for r in routes):
            raise ConfigurationError(f"{setting}.routes must be a non-empty list of routing keys")
        try:
            root_url = normalise_root_url(entry.get("root_url"))
        except ValueError as error:
            raise ConfigurationError(f"{setting}.root_url {error}") from None
        url = url_from(str(entry.get("pulse_url") or ""), f"{setting}.pulse_url")
        sources.append({
            "pulse_url": url,
            "user": user_of(url),
            "root_url": root_url,
            "routes": tuple(routes),
        })
    return tuple(sources)
