"""What a localization file holds, learnt once per content and kept in the database.

``message_ids`` is the pure part: moz.l10n's own parse, read the way
``moz-l10n compare`` reads it (its ``msg_ids``). ``learn`` is the cached
part: a content is known by its id in its clone (git blob id, Mercurial
file node), so six channels, a second worker or a restart never parse it
again; only contents never seen are read from the clone, in one stream.
"""

import functools
import hashlib
import json
import logging
import os.path
from dataclasses import dataclass
from importlib.metadata import version

from django.conf import settings
from django.db import connection
from moz.l10n.formats import UnsupportedFormat
from moz.l10n.model import Entry
from moz.l10n.resource import parse_resource

from life.kinds import for_repository
from plumbing import bulk
from plumbing.memo import Memo
from plumbing.text import storable

from .models import ParsedFile

log = logging.getLogger(__name__)

PARSER = f"moz.l10n {version('moz.l10n')}"
ERROR_LENGTH = 1000
# What this process learnt, by cache key: a locale push of Firefox needs ~320, a full pass ~50,000
# (the rest then costs a query per thousands): bounded well below what that would take in memory.
in_process = Memo(20_000)


@dataclass(frozen=True)
class Parsed:
    """The message ids of a file, or why it has none: a parse error (``unsupported`` when moz.l10n knows
    no such format)."""

    ids: frozenset = frozenset()
    error: str = ""
    unsupported: bool = False


def message_ids(path, data):
    """Parsed for the bytes ``data`` of a file named ``path``, exactly as ``moz-l10n compare`` sees it."""
    try:
        resource = parse_resource(path, data)
        return Parsed(frozenset(
            ".".join(section.id + entry.id)
            for section in resource.sections
            for entry in section.entries
            if isinstance(entry, Entry)
        ))
    except UnsupportedFormat as error:
        return Parsed(error=_reason(error), unsupported=True)
    except Exception as error:  # whatever a hostile file makes a parser raise is that file's error
        return Parsed(error=_reason(error))


def _reason(error):
    return storable(str(error) or type(error).__name__)[:ERROR_LENGTH]


def too_big(max_bytes):
    return Parsed(error=f"larger than {max_bytes} bytes (COMPARE_MAX_FILE_BYTES)")


@functools.lru_cache(maxsize=1 << 17)
def cache_key(path, content_id):
    """One key per (parser, format as told by the name, content)."""
    return hashlib.sha256(f"{PARSER}\n{os.path.splitext(path)[1]}\n{content_id}".encode()).hexdigest()


@dataclass
class Learnt:
    """Of one ``learn``: how many contents were parsed now, and how many were known already."""

    parsed: int = 0
    known: int = 0


def learn(repository, entries, counter=None):
    """{cache key: Parsed} for the (path, content id) ``entries`` of ``repository``'s clone.

    Contents this process has seen cost nothing; those another worker (or an earlier process) learnt
    cost one query per thousands; the others are read from the clone in one stream, parsed, and
    stored (a parallel worker storing the same keys is harmless). ``counter`` (a Learnt) adds up the
    work.
    """
    by_key = {}
    for path, content_id in entries:
        by_key.setdefault(cache_key(path, content_id), (path, content_id))
    known = {key: parsed for key in by_key if (parsed := in_process.get(key)) is not None}
    asked = [key for key in by_key if key not in known]
    for key, ids, error, unsupported in bulk.select_in(ParsedFile, ["key", "ids", "error", "unsupported"], "key", asked):
        known[key] = Parsed(frozenset(json.loads(ids) if isinstance(ids, str) else ids), error, bool(unsupported))
    unknown = [entry for key, entry in by_key.items() if key not in known]
    max_bytes = settings.COMPARE_MAX_FILE_BYTES
    learnt = {}
    for path, content_id, data in for_repository(repository).read_files(repository, unknown, max_bytes):
        learnt[cache_key(path, content_id)] = too_big(max_bytes) if data is None else message_ids(path, data)
    if learnt:
        bulk.insert_rows(
            ParsedFile,
            ["key", "ids", "error", "unsupported"],
            [(key, _json(sorted(p.ids)), p.error, p.unsupported) for key, p in sorted(learnt.items())],
        )
    if counter is not None:
        counter.parsed += len(learnt)
        counter.known += len(known)
    known.update(learnt)
    for key in asked:
        in_process.put(key, known[key])
    return known


def _json(value):
    """A JSONField value as insert_rows sends it (database-ready)."""
    return ParsedFile._meta.get_field("ids").get_db_prep_save(value, connection=connection)
