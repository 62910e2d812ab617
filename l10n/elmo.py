"""Parsing a compare-locales task: its definition and its ``elmo.json`` artifact (DESIGN §5.3).

Pure code: decoded JSON in, dataclasses or a PermanentError with a readable
reason out. The shape is checked with a JSON Schema; what a schema says
poorly (40-hex revisions, locale tags, safe artifact names, paths) is
checked by the same validators the rest of the worker uses.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from plumbing.errors import PermanentError
from plumbing.jsondoc import validate_schema
from plumbing.names import validate_locale_code, validate_revision

from .models import STORED_COUNTS, completion

MAX_COUNT = 10**9
MAX_COMPARISONS = 5000
MAX_ROUTES = 1000  # far above what a task carries; bounds the route matching
SUPPORTED_VERSIONS = ("1.0",)
_ARTIFACT_NAME = re.compile(r"public/(?:[A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_CONFIG_PATH = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*\Z")

_count = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}

ELMO_SCHEMA = {
    "type": "object",
    "required": ["version", "comparisons"],
    "properties": {
        "version": {"type": "string"},
        "compare-locales": {"type": "string", "maxLength": 40},
        "repository": {"type": "string", "maxLength": 500},
        "comparisons": {
            "type": "array",
            "maxItems": MAX_COMPARISONS,
            "items": {
                "type": "object",
                "required": ["locale", "config", "artifact", "revisions", "summary"],
                "properties": {
                    "locale": {"type": "string", "maxLength": 30},
                    "config": {"type": "string", "maxLength": 255},
                    "artifact": {"type": "string", "maxLength": 255},
                    "revisions": {
                        "type": "object",
                        "maxProperties": 20,
                        "additionalProperties": {"type": "string"},
                    },
                    "summary": {
                        "type": "object",
                        "properties": {name: _count for name in STORED_COUNTS},
                    },
                },
            },
        },
    },
}

TASK_SCHEMA = {
    "type": "object",
    "required": ["created", "metadata"],
    "properties": {
        "created": {"type": "string", "maxLength": 40},
        "metadata": {"type": "object", "properties": {"source": {"type": "string", "maxLength": 500}}},
        "routes": {"type": "array", "maxItems": MAX_ROUTES, "items": {"type": "string", "maxLength": 1000}},
    },
}


@dataclass(frozen=True)
class TaskDefinition:
    created: datetime
    source: str | None
    routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    locale: str
    config: str
    artifact: str
    revisions: tuple[tuple[str, str], ...]  # (repository URL, revision)
    counts: dict  # the eleven summary counts and missingInFiles

    @property
    def total(self):
        return self.counts["changed"] + self.counts["unchanged"] + self.counts["missing"] + self.counts["missingInFiles"]

    @property
    def completion(self):
        c = self.counts
        return completion(c["changed"], c["unchanged"], c["missing"], c["missingInFiles"])


@dataclass(frozen=True)
class ElmoReport:
    repository: str
    comparisons: tuple[Comparison, ...]


def parse_task_definition(value):
    validate_schema(value, TASK_SCHEMA, "task definition")
    try:
        created = datetime.fromisoformat(value["created"].replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"task definition has an invalid created time {value['created'][:40]!r}") from None
    if created.tzinfo is None:
        raise PermanentError("task definition's created time has no time zone")
    return TaskDefinition(created, value["metadata"].get("source"), tuple(value.get("routes", ())))


def _topic_matches(binding, key):
    """AMQP topic matching: does routing key ``key`` match binding key ``binding``?

    ``*`` matches one word, ``#`` zero or more; words are separated by dots.
    """
    pattern, words = binding.split("."), key.split(".")
    # reachable[j]: the pattern so far can match the first j words.
    reachable = [True] + [False] * len(words)
    for part in pattern:
        if part == "#":
            for j in range(1, len(words) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            reachable = [False] + [reachable[j] and part in ("*", words[j]) for j in range(len(words))]
    return reachable[-1]


def require_configured_route(task_id, task, bindings):
    """Raise unless the task's own definition carries a route that one of ``bindings`` binds.

    Binding keys name custom routes with the ``route.`` prefix the queue
    adds when it publishes (binding ``route.project.l10n.elmo.v1`` receives a
    task whose definition lists ``project.l10n.elmo.v1``). The CC header of
    the message is not proof: anyone who can publish can write it.
    """
    if not any(_topic_matches(binding, f"route.{route}") for route in task.routes for binding in bindings):
        raise PermanentError(f"task {task_id} carries none of the configured routes ({', '.join(bindings)})")


def _repository_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise PermanentError(f"repository {url[:100]!r} is not an http(s) URL")
    return url if url.endswith("/") else url + "/"


def parse_elmo(value, fallback_repository=None):
    """An ElmoReport; the repository defaults to the task's ``metadata.source``."""
    validate_schema(value, ELMO_SCHEMA, "elmo.json")
    if value["version"] not in SUPPORTED_VERSIONS:
        raise PermanentError(f"elmo.json version {value['version'][:20]!r} is not supported")
    repository = value.get("repository") or fallback_repository
    if not repository:
        raise PermanentError("elmo.json names no repository and the task has no metadata.source")
    repository = _repository_url(repository)
    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(repository))
    comparisons = []
    seen = set()
    for index, entry in enumerate(value["comparisons"]):
        locale = validate_locale_code(entry["locale"])
        config = entry["config"]
        if not _CONFIG_PATH.match(config):
            raise PermanentError(f"comparison {index}: config {config[:80]!r} is not a safe relative path")
        if not _ARTIFACT_NAME.match(entry["artifact"]):
            raise PermanentError(f"comparison {index}: artifact {entry['artifact'][:80]!r} is not a public artifact name")
        if (locale, config) in seen:
            raise PermanentError(f"comparison {index}: {locale} {config} appears twice")
        seen.add((locale, config))
        revisions = []
        for path, revision in sorted(entry["revisions"].items()):
            if not path.startswith("/") or ".." in path.split("/") or "//" in path:
                raise PermanentError(f"comparison {index}: revision key {path[:80]!r} is not an absolute path")
            revisions.append((urljoin(origin, path if path.endswith("/") else path + "/"), validate_revision(revision)))
        summary = entry["summary"]
        counts = {name: summary.get(name, 0) for name in STORED_COUNTS}
        comparisons.append(Comparison(locale, config, entry["artifact"], tuple(revisions), counts))
    return ElmoReport(repository, tuple(comparisons))
