"""Comparing a locale with its reference: pure, over plain values, with ``moz-l10n compare``'s semantics.

For each reference file listing messages: a locale file that is absent
misses them all; one that does not parse is an error, and its messages
count neither missing nor translated; otherwise each reference id the
locale lacks is missing (in reference order, as often as the reference
lists it), the others are translated. Reference files listing no message
are skipped, as the tool skips them.
"""

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

    @property
    def digest(self):
        """Equal for two comparisons with the same numbers and the same per-file detail."""
        detail = [self.total, self.changed, self.missing, self.errors, self.obsolete,
                  [[f.path, list(f.missing), f.missing_file, f.error] for f in self.files]]
        return hashlib.sha256(json.dumps(detail, ensure_ascii=False).encode()).hexdigest()


def compare(reference, parsed):
    """The Comparison of a locale whose files parsed as ``parsed`` ({path: Parsed}; an absent path is a
    missing file) with ``reference`` ({path: sequence of message ids})."""
    total = changed = missing = errors = obsolete = 0
    files = []
    for path, ids in reference.items():
        total += len(ids)
        if not ids:
            continue
        found = parsed.get(path)
        if found is None:
            missing += len(ids)
            files.append(FileResult(path, tuple(ids), missing_file=True))
        elif found.error:
            errors += 1
            files.append(FileResult(path, error=found.error))
        else:
            lacking = tuple(message for message in ids if message not in found.ids)
            missing += len(lacking)
            changed += len(ids) - len(lacking)
            obsolete += len(found.ids.difference(ids))
            if lacking:
                files.append(FileResult(path, lacking))
    return Comparison(total, changed, missing, errors, obsolete, tuple(files))
