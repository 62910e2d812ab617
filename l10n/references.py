"""A computed tree's reference at a revision: which message ids each localized file must hold.

Two kinds, as ``moz-l10n compare --source`` takes them:

- ``_data/<channel>.json``: a JSON object mapping a file path to the list of
  message ids that channel ships (``parse_channel_json``, pure);
- a compare-locales TOML configuration (with its includes): moz.l10n's own
  ``L10nConfigPaths`` reads it, over an empty stand-in of the reference's
  tree (its globs need files to exist; configurations are read from the
  clone), and the reference files it names are parsed like any other
  (``l10n.parsing``, cached).

Everything is read from the clone's object store at the revision. A
reference that cannot be read as such is a ReferenceInvalid naming why.
"""

import json
import os.path
import tempfile
import tomllib
from dataclasses import dataclass, field

from moz.l10n.formats import l10n_extensions
from moz.l10n.paths import L10nConfigPaths

from life.kinds import for_repository
from plumbing.errors import PermanentError
from plumbing.memo import Memo

from . import parsing

# The reference itself is trusted more than a locale's file, but not without bound.
MAX_REFERENCE_BYTES = 64 << 20
# Where locales' folders stand for moz.l10n's path templates (only strings are made of it).
_LOCALE_BASE = "/l10n-base"


class ReferenceInvalid(PermanentError):
    """The tree's reference cannot be read; its comparisons stay as they were."""


class ReferenceMissing(ReferenceInvalid):
    """The reference file is not in the reference repository at that revision (a channel that ended)."""


def parse_channel_json(data):
    """{path: tuple of message ids} from the bytes of a ``_data/<channel>.json``; ReferenceInvalid if
    they are not a JSON object of lists of strings."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise ReferenceInvalid(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ReferenceInvalid(f"a JSON object of file paths is expected, not {type(value).__name__}")
    for path, ids in value.items():
        if not isinstance(ids, list) or not all(isinstance(message, str) for message in ids):
            raise ReferenceInvalid(f"the messages of {path[:200]!r} are not a list of strings")
    return {path: tuple(ids) for path, ids in value.items()}


@dataclass(frozen=True)
class Reference:
    """What a tree's locales are compared with, at one revision of its reference repository."""

    messages: dict = field(default_factory=dict)  # {locale-relative path: ids}, the same for every locale
    watched: frozenset = frozenset()  # reference repository paths whose change changes this reference
    # TOML only: [(target path template, ids)] and the configuration that fills in a locale.
    targets: tuple = ()
    config: object = None

    def for_locale(self, code):
        """{path in the locale's folder: ids} for locale ``code``."""
        if self.config is None:
            return self.messages
        folder = f"{_LOCALE_BASE}/{code}"
        return {os.path.relpath(self.config.format_target_path(target, code), folder): ids
                for target, ids in self.targets}


_loaded = Memo(64)  # {(repository id, revision, path): Reference}, the newest few


def load(repository, revision, path):
    """The Reference at ``path`` of ``repository`` at ``revision`` (kept for the next push: a reference
    changes a few times a week, its locales many times a day)."""
    key = (repository.pk, revision, path)
    reference = _loaded.get(key)
    if reference is None:
        if path.endswith(".json"):
            reference = _channel(repository, revision, path)
        elif path.endswith(".toml"):
            reference = _configuration(repository, revision, path)
        else:
            raise ReferenceInvalid(f"{path}: a reference is a _data/<channel>.json or a compare-locales .toml")
        _loaded.put(key, reference)
    return reference


def _read_file(repository, revision, path, listing=None):
    """The bytes of ``path`` at ``revision`` (None if over the cap); ReferenceMissing if it has none."""
    kind = for_repository(repository)
    if listing is None:
        listing = dict(kind.list_files(repository, revision, path.rpartition("/")[0]))
    if path not in listing:
        raise ReferenceMissing(f"{repository.name} has no {path} at {revision[:12]}")
    for _, _, data in kind.read_files(repository, [(path, listing[path])], MAX_REFERENCE_BYTES):
        return data


def _channel(repository, revision, path):
    data = _read_file(repository, revision, path)
    if data is None:
        raise ReferenceInvalid(f"{path} is larger than {MAX_REFERENCE_BYTES} bytes")
    try:
        messages = parse_channel_json(data)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"{repository.name} {path} at {revision[:12]}: {error}") from None
    return Reference(messages=messages, watched=frozenset([path]))


def _configuration(repository, revision, path):
    listing = dict(for_repository(repository).list_files(repository, revision))
    if path not in listing:
        raise ReferenceMissing(f"{repository.name} has no {path} at {revision[:12]}")
    with tempfile.TemporaryDirectory(prefix="l10n-reference-") as root:
        for name in listing:
            if os.path.splitext(name)[1] in l10n_extensions:
                placeholder = os.path.join(root, name)
                os.makedirs(os.path.dirname(placeholder), exist_ok=True)
                open(placeholder, "wb").close()

        def read_config(config_path):
            name = os.path.relpath(config_path, root)
            if name not in listing:
                raise ReferenceInvalid(f"{repository.name} has no configuration {name} at {revision[:12]}")
            data = _read_file(repository, revision, name, listing)
            try:
                return tomllib.loads((data or b"").decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
                raise ReferenceInvalid(f"{repository.name} {name}: not valid TOML ({error})") from None

        try:
            config = L10nConfigPaths(os.path.join(root, path), cfg_load=read_config)
        except ReferenceInvalid:
            raise
        except Exception as error:
            raise ReferenceInvalid(f"{repository.name} {path}: {error}") from None
        config.base = _LOCALE_BASE
        pairs = [(os.path.relpath(ref, root), target) for ref, target in config.all()]
        watched = {os.path.relpath(name, root) for name in config.config_paths()}
    present = [(ref, target) for ref, target in pairs if ref in listing]
    learnt = parsing.learn(repository, [(ref, listing[ref]) for ref, _ in present])
    targets = []
    for ref, target in present:
        parsed = learnt[parsing.cache_key(ref, listing[ref])]
        if parsed.unsupported:
            continue  # as moz-l10n compare skips it
        if parsed.error:
            raise ReferenceInvalid(f"{repository.name} {ref} at {revision[:12]} does not parse: {parsed.error}")
        targets.append((target, tuple(sorted(parsed.ids))))
        watched.add(ref)
    return Reference(watched=frozenset(watched), targets=tuple(targets), config=config)
