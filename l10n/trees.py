"""Declaring computed trees: one by its reference and locales, or one per channel of a reference repository."""

import logging
import re
from dataclasses import dataclass, field

from django.db import transaction

from life.kinds import for_repository
from life.models import Forest, Repository, Tree
from plumbing.errors import PermanentError

from . import computation

log = logging.getLogger(__name__)

CHANNELS_FOLDER = "_data"
_CHANNEL_FILE = re.compile(r"_data/([A-Za-z0-9][A-Za-z0-9._-]*)\.json")


def add_tree(code, reference_repository, reference_path, locales_repository=None, forest=None, progress=None):
    """The computed Tree ``code`` (created, or made to match), its every locale computed once.

    Its locales are ``locales_repository`` (a folder per locale) or ``forest``
    (a repository per locale). Returns (Tree, computation.Recomputed).
    """
    if (locales_repository is None) == (forest is None):
        raise PermanentError("a computed tree has its locales in a repository or in a forest, one of the two")
    if not reference_path.endswith((".json", ".toml")):
        raise PermanentError(f"{reference_path}: a reference is a _data/<channel>.json or a compare-locales .toml")
    with transaction.atomic():
        tree = Tree.objects.filter(config_repository=reference_repository, config_path=reference_path).first()
        if tree is None:
            tree, _ = Tree.objects.get_or_create(code=code)
        elif tree.code != code:
            raise PermanentError(f"tree {tree.code} already has the reference {reference_repository.name}:"
                                 f"{reference_path}")
        tree.computed, tree.archived = True, False
        tree.config_repository, tree.config_path = reference_repository, reference_path
        tree.locales_repository, tree.l10n = locales_repository, forest
        tree.save()
        tree.repositories.add(*[r for r in (reference_repository, locales_repository) if r is not None])
    log.info("computed tree %s: reference %s:%s, locales %s", code, reference_repository.name, reference_path,
             locales_repository.name if locales_repository else f"forest {forest.name}")
    return tree, computation.recompute(tree, progress=progress)


def channel_paths(reference_repository):
    """{channel: path} of the ``_data/<channel>.json`` files at the reference's stored tip."""
    tip = computation.current_tip(reference_repository)
    if tip is None:
        raise PermanentError(f"{reference_repository.name} has no stored push yet")
    listing = for_repository(reference_repository).list_files(reference_repository, tip, CHANNELS_FOLDER)
    return {match[1]: path for path, _ in listing if (match := _CHANNEL_FILE.fullmatch(path))}


@dataclass
class Channels:
    added: list = field(default_factory=list)  # Trees made (and computed)
    kept: list = field(default_factory=list)  # Trees that were there
    archived: list = field(default_factory=list)  # Trees whose channel file is gone


def add_channel_trees(reference_repository, locales_repository, prefix="firefox", progress=None):
    """One computed tree ``<prefix>-<channel>`` per ``_data/<channel>.json`` of ``reference_repository``;
    run again, it adds the channels that appeared and archives those that are gone (history kept).
    ``progress(code)`` returns a ``progress(done, total)`` for that tree's first computation."""
    result = Channels()
    channels = channel_paths(reference_repository)
    existing = {tree.config_path: tree for tree in Tree.objects.filter(
        config_repository=reference_repository, locales_repository=locales_repository, computed=True,
        config_path__startswith=f"{CHANNELS_FOLDER}/")}
    for channel, path in sorted(channels.items()):
        tree = existing.get(path)
        if tree is not None and not tree.archived:
            result.kept.append(tree)
            continue
        code = tree.code if tree is not None else f"{prefix}-{channel}"
        tree, _ = add_tree(code, reference_repository, path, locales_repository=locales_repository,
                           progress=progress(code) if progress else None)
        result.added.append(tree)
    for path, tree in sorted(existing.items()):
        if path not in channels and not tree.archived:
            Tree.objects.filter(pk=tree.pk).update(archived=True)
            log.warning("tree %s archived: %s has no %s any more", tree.code, reference_repository.name, path)
            result.archived.append(tree)
    return result


def repository(name):
    try:
        return Repository.objects.get(name=name)
    except Repository.DoesNotExist:
        raise PermanentError(f"unknown repository {name!r} (track it first)") from None


def forest(name):
    try:
        return Forest.objects.get(name=name)
    except Forest.DoesNotExist:
        raise PermanentError(f"unknown forest {name!r}") from None
