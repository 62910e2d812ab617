"""Real compare-locales results over small generated repositories.

The l10n Taskcluster tasks run compare-locales and upload its findings as
``elmo.json`` (DESIGN §5.3). Rather than inventing those numbers, tests and
the demo write a small en-US reference (with its compare-locales TOML
configuration, as in gecko-strings) and locales of known kinds —
"complete", "partial", "error", "obsolete" — then run the real
``compare-locales`` command line on them and build ``elmo.json`` and the
per-locale detail artifacts from its ``--json`` output. The counts the worker
stores can then be checked against what compare-locales itself said.

``publish_world()`` also commits the same files to the simulated
hg.mozilla.org, so the revisions in ``elmo.json`` are real changesets.
"""

import json
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from l10n.models import SUMMARY_COUNTS  # every locale's summary of compare-locales 8+ carries all of them

CONFIG_PATH = "_configs/browser.toml"
REPOSITORY = "https://hg.mozilla.org/l10n/gecko-strings/"
LOCALES = ("de", "es-ES", "fr", "it", "ja-JP-mac", "pl", "sr-Latn", "ca-valencia")

# As gecko-strings' own configurations: paths relative to the repository root, one level up.
CONFIG = f"""\
basepath = ".."
locales = [{", ".join(f'"{code}"' for code in LOCALES)}]

[env]
    l = "{{l10n_base}}/{{locale}}/"

[[paths]]
    reference = "browser/**"
    l10n = "{{l}}browser/**"

[[paths]]
    reference = "toolkit/**"
    l10n = "{{l}}toolkit/**"
""".encode()

REFERENCE = {
    CONFIG_PATH: CONFIG,
    "browser/browser.ftl": (b"hello = Hello\nbye = Goodbye\n"
                            b"menu-file = File\n    .accesskey = F\nmenu-edit = Edit\n"),
    "browser/menu.ftl": b"open = Open\nsave = Save as { $name }\n",
    "toolkit/about.ftl": b"about = About { -brand }\nlicense = License\n",
    # compare-locales counts access keys under "keys", not as changed or unchanged strings.
    "toolkit/update.properties": b"updateAvailable = An update to %S is available\nupdateButton = Update\n"
                                 b"updateButton.accesskey = U\n",
}

# Each kind of locale as files; what a kind leaves out, compare-locales reports missing.
LOCALE_KINDS = {
    "complete": {
        "browser/browser.ftl": (b"hello = Hallo\nbye = Auf Wiedersehen\n"
                                b"menu-file = Datei\n    .accesskey = D\nmenu-edit = Bearbeiten\n"),
        "browser/menu.ftl": "open = Öffnen\nsave = { $name } speichern\n".encode(),
        "toolkit/about.ftl": "about = Über { -brand }\nlicense = Lizenz\n".encode(),
        "toolkit/update.properties": b"updateAvailable = Ein Update f\\u00fcr %S ist verf\\u00fcgbar\n"
                                     b"updateButton = Aktualisieren\nupdateButton.accesskey = A\n",
    },
    "partial": {
        # Two strings short, one left in English, and browser/menu.ftl not started.
        "browser/browser.ftl": b"hello = Bonjour\nbye = Au revoir\n",
        "toolkit/about.ftl": "about = À propos de { -brand }\nlicense = License\n".encode(),
        "toolkit/update.properties": "updateAvailable = Une mise à jour de %S est disponible\n".encode(),
    },
    "error": {
        "browser/browser.ftl": (
            b"hello = Ciao\n"
            b"bye = { $x \n"  # a Fluent syntax error: compare-locales reports the junk, and bye as missing
            b"menu-file = File\n"  # the access key attribute is missing: an error
            b"menu-edit = Modifica\n"
        ),
        "browser/menu.ftl": b"open = Apri\nsave = Salva { $name }\n",
        "toolkit/about.ftl": b"about = Informazioni\nlicense = Licenza\n",  # lost { -brand }: a warning
        # Two printf placeables for the reference's one: an error.
        "toolkit/update.properties": "updateAvailable = Aggiornamento di %S a %S disponibile\n"
                                     "updateButton = Aggiorna\nupdateButton.accesskey = A\n".encode(),
    },
    "obsolete": {
        "browser/browser.ftl": ("hello = Hola\nbye = Adiós\n"
                                "menu-file = Archivo\n    .accesskey = A\nmenu-edit = Editar\nold = Viejo\n").encode(),
        "browser/menu.ftl": b"open = Abrir\nsave = Guardar { $name }\nclose = Cerrar\n",
        "toolkit/about.ftl": b"about = Acerca de { -brand }\nlicense = Licencia\n",
        "toolkit/update.properties": "updateAvailable = Hay una actualización de %S\n"
                                     "updateButton = Actualizar\nupdateButton.accesskey = c\n".encode(),
        "browser/removed.ftl": b"gone = Desaparecido\n",  # a whole file en-US no longer has
    },
}


def _write_tree(root, files):
    root = Path(root)
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return root


def write_reference(path):
    """Write the en-US reference tree under ``path``; returns the path of its TOML configuration."""
    return _write_tree(path, REFERENCE) / CONFIG_PATH


def write_locale(path, kind):
    """Write a locale of ``kind`` ("complete", "partial", "error" or "obsolete") under ``path``,
    which is ``<l10n base>/<locale code>``; returns ``path``."""
    if kind not in LOCALE_KINDS:
        raise ValueError(f"unknown kind of locale {kind!r}; one of {sorted(LOCALE_KINDS)}")
    return _write_tree(path, LOCALE_KINDS[kind])


def compare_locales_executable():
    # The command in this interpreter's environment, whether or not that is on PATH.
    return str(Path(sys.executable).with_name("compare-locales"))


def run_compare_locales(config_path, l10n_base, locales):
    """Run the compare-locales command over ``locales`` under ``l10n_base``.

    Returns what ``--json`` wrote for the one configuration:
    ``{"summary": {locale: {11 counts}}, "details": {path: ...}}``.
    """
    with tempfile.TemporaryDirectory(prefix="compare-locales-") as scratch:
        output = Path(scratch) / "compare.json"
        # --return-zero: errors in a locale are a result, not a failure of the run.
        command = [compare_locales_executable(), "--json", str(output), "--return-zero",
                   str(config_path), str(l10n_base), *locales]
        process = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if process.returncode != 0 or not output.exists():
            raise RuntimeError(f"compare-locales failed ({process.returncode}): {process.stdout}{process.stderr}")
        (result,) = json.loads(output.read_text("utf-8"))  # one entry per configuration
    return result


def locale_details(compare_output, locale):
    """The part of compare-locales' details tree about ``locale``.

    The tree's keys are paths relative to the l10n base, so they start with the locale code;
    compare-locales joins single-child levels ("fr/browser"), so match on the first segment."""
    return {key: value for key, value in compare_output.get("details", {}).items() if key.split("/")[0] == locale}


def detail_artifact(compare_output, locale):
    """The detail artifact for ``locale``: what compare-locales writes for that locale alone."""
    return {"summary": {locale: compare_output["summary"][locale]}, "details": locale_details(compare_output, locale)}


def artifact_name(locale):
    return f"public/compares/browser.{locale}.json"


def elmo_json(compare_output, *, config=CONFIG_PATH, repository=REPOSITORY, revisions_for_locale,
              artifact_for_locale=artifact_name):
    """The elmo.json document (DESIGN §5.3) for ``compare_output`` of run_compare_locales().

    ``revisions_for_locale(code)`` gives the revisions compared ({path: 40 hex});
    ``repository=None`` leaves the optional "repository" out."""
    document = {"version": "1.0", "compare-locales": version("compare-locales")}
    if repository is not None:
        document["repository"] = repository
    document["comparisons"] = [
        {
            "locale": code,
            "config": config,
            "artifact": artifact_for_locale(code),
            "revisions": dict(revisions_for_locale(code)),
            "summary": {key: summary.get(key, 0) for key in SUMMARY_COUNTS},
        }
        for code, summary in sorted(compare_output["summary"].items())
    ]
    return document


def compare_kinds(kinds):
    """Run compare-locales on the reference and one locale per ``kinds`` entry ({code: kind}),
    in a scratch directory; returns its output as run_compare_locales() does."""
    with tempfile.TemporaryDirectory(prefix="compare-") as scratch:
        root = Path(scratch)
        config = write_reference(root / "en-US")
        for code, kind in kinds.items():
            write_locale(root / "l10n" / code, kind)
        return run_compare_locales(config, root / "l10n", sorted(kinds))


def elmo_document(results, *, revisions, repository=REPOSITORY, drop_repository=False):
    """elmo.json for ``results`` of publish_world(); ``revisions`` maps code -> {path: revision}."""
    output = {"summary": {code: result["summary"] for code, result in results.items()}}
    return elmo_json(output, repository=None if drop_repository else repository,
                     revisions_for_locale=revisions.__getitem__)


def publish_world(hgmo, kinds, reference_name="l10n/gecko-strings", forest="l10n-central"):
    """Commit the reference and one locale per ``kinds`` entry ({code: kind}) to ``hgmo``, push,
    and compare them.

    Returns ({code: {path: revision}}, {code: {"summary": {...}, "details": {...}}}), the details
    being the locale's part of compare-locales' details tree.
    """
    for name, files in [(reference_name, REFERENCE)] + [(f"{forest}/{c}", LOCALE_KINDS[k]) for c, k in kinds.items()]:
        if not (hgmo.root / name / ".hg").is_dir():
            hgmo.create_repo(name)
        hgmo.commit_and_push(name, files, message=f"Strings for {name}")
    reference_revision = hgmo.pushlog(reference_name)[-1]["changesets"][-1]
    revisions = {
        code: {
            f"/{reference_name}/": reference_revision,
            f"/{forest}/{code}/": hgmo.pushlog(f"{forest}/{code}")[-1]["changesets"][-1],
        }
        for code in kinds
    }
    output = compare_kinds(kinds)
    results = {code: {"summary": output["summary"][code], "details": locale_details(output, code)} for code in kinds}
    return revisions, results


def publish_github_world(github, kinds, source="mozilla-l10n/firefox-l10n-source", l10n="mozilla-l10n/firefox-l10n"):
    """As publish_world(), the way Firefox's strings live since 2024: the reference (with its
    configurations in ``_configs/``) in one GitHub repository, every locale in a top-level folder of
    another. Commits to the default branch of each (creating them if needed), one commit for all
    the locales. Returns ({code: {path: revision}}, {code: {"summary": ..., "details": ...}})."""
    for name in (source, l10n):
        if not github.git_dir(name).is_dir():
            github.create_repo(name)
    reference = github.commit(source, REFERENCE, message="Update en-US")
    files = {f"{code}/{path}": content for code, kind in kinds.items() for path, content in LOCALE_KINDS[kind].items()}
    locales = github.commit(l10n, files, message=f"Update {', '.join(sorted(kinds))}")
    revisions = {code: {f"/{source}/": reference, f"/{l10n}/": locales} for code in kinds}
    output = compare_kinds(kinds)
    results = {code: {"summary": output["summary"][code], "details": locale_details(output, code)} for code in kinds}
    return revisions, results


def github_source_url(github, full_name, revision, path=CONFIG_PATH):
    """A task's ``metadata.source`` for a file of a GitHub repository: GitHub's blob URL."""
    return f"{github.html_url(full_name)}/blob/{revision}/{path}"
