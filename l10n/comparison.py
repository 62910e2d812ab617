"""Comparing a locale with its reference: pure, over plain values, with ``moz-l10n compare``'s semantics.

For each reference file listing messages: a locale file that is absent
misses them all; one that does not parse is an error, and its messages
count neither missing nor translated; otherwise each reference id the
locale lacks is missing (in reference order, as often as the reference
lists it), the others are translated. Reference files listing no message
are skipped, as the tool skips them.
"""

import functools
import hashlib
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileResult:
    """What one file of a locale lacks (only files that lack something are kept)."""

    path: str
    missing: tuple = ()
    missing_file: bool = False
    error: str = ""

    # Encoded once per result: ``_compare_file`` shares one FileResult among the channels and pushes
    # that compare the same ids with the same content.
    @functools.cached_property
    def detail_json(self):
        """This file's part of ``Comparison.digest``."""
        return json.dumps([self.path, list(self.missing), self.missing_file, self.error], ensure_ascii=False)

    @functools.cached_property
    def missing_json(self):
        """``missing`` as a JSON document, encoded as Django's JSONField encodes it."""
        return json.dumps(list(self.missing))


@dataclass(frozen=True)
class Comparison:
    total: int  # messages the reference lists
    changed: int  # translated: present in a file that parses
    missing: int
    errors: int  # files that do not parse
    obsolete: int  # ids the locale's files have that the reference's do not
    files: tuple = field(default=())  # FileResults, in reference order

    @property
    def completion(self):
        return int(self.changed * 100 / self.total) if self.total else 0

    @functools.cached_property
    def digest(self):
        """Equal for two comparisons with the same numbers and the same per-file detail: the SHA-256 of
        ``json.dumps([total, changed, missing, errors, obsolete, [[path, missing ids, missing file,
        error], ...]], ensure_ascii=False)`` (stored with each run: the formula must not change), put
        together from the files' encodings."""
        numbers = json.dumps([self.total, self.changed, self.missing, self.errors, self.obsolete])
        detail = f"{numbers[:-1]}, [{', '.join(f.detail_json for f in self.files)}]]"
        return hashlib.sha256(detail.encode()).hexdigest()


def compare(reference, parsed):
    """The Comparison of a locale whose files parsed as ``parsed`` ({path: Parsed}; an absent path is a
    missing file) with ``reference`` ({path: sequence of message ids})."""
    total = changed = missing = errors = obsolete = 0
    files = []
    for path, ids in reference.items():
        total += len(ids)
        if not ids:
            continue
        result, file_changed, file_obsolete = _compare_file(path, ids if isinstance(ids, tuple) else tuple(ids),
                                                            parsed.get(path))
        changed += file_changed
        obsolete += file_obsolete
        if result is not None:
            files.append(result)
            missing += len(result.missing)
            errors += bool(result.error)
    return Comparison(total, changed, missing, errors, obsolete, tuple(files))


@functools.lru_cache(maxsize=1 << 16)
def _compare_file(path, ids, found):
    """(FileResult if it lacks something, translated, obsolete) for one file: the channels of a
    reference list most files with the same ids, so a push compares each (ids, content) once."""
    if found is None:
        return FileResult(path, ids, missing_file=True), 0, 0
    if found.error:
        return FileResult(path, error=found.error), 0, 0
    obsolete = len(found.ids) - len(found.ids.intersection(ids))
    if found.ids.issuperset(ids):
        return None, len(ids), obsolete
    lacking = tuple(message for message in ids if message not in found.ids)
    return FileResult(path, lacking), len(ids) - len(lacking), obsolete
