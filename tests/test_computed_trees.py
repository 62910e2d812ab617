"""Computed trees: comparisons computed from every push, checked against the real ``moz-l10n compare``.

Real git repositories served by the simulated GitHub (and Mercurial ones by
the simulated hg.mozilla.org), tracked and ingested by the project's own
functions; the truth is the ``moz-l10n compare --json`` command line run on
the same generated files written to disk.
"""

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from l10n import computation, results, trees
from l10n.comparison import compare
from l10n.models import COMPUTED, Active, ParsedFile, Run, RunFile
from l10n.parsing import PARSER, Parsed
from life.hg.ingest import ingest_pushes
from life.kinds import for_repository
from life.models import Forest, Repository, SyncState, Tree
from simulated.github import SimulatedGitHub

MOZ_L10N = str(Path(sys.executable).parent / "moz-l10n")
SOURCE = "mozilla-l10n/firefox-l10n-source"
L10N = "mozilla-l10n/firefox-l10n"

# --- generated reference and locales ------------------------------------------------


def _ftl(ids, broken=False):
    text = "".join(f"{i} = Value of {i}\n" if not i.startswith("-") else f"{i} = Brand\n" for i in ids)
    return (text + ("oops = { \n" if broken else "")).encode()


def _properties(ids):
    return "".join(f"{i} = text {i}\n" for i in ids).encode()


def _dtd(ids, broken=False):
    text = "".join(f'<!ENTITY {i} "text {i}">\n' for i in ids)
    return (text + ("<!ENTITY broken" if broken else "")).encode()


def _ini(ids):
    return ("[Strings]\n" + "".join(f"{i.split('.', 1)[1]}=text\n" for i in ids)).encode()


REFERENCE = {
    "browser/branding/brand.ftl": ["-brand-short-name", "brand-product"],
    "browser/app.ftl": [f"app-{n}" for n in range(12)],
    "browser/chrome/prefs.properties": [f"pref.{n}" for n in range(8)],
    "toolkit/chrome/global.dtd": [f"global.{n}" for n in range(6)],
    "browser/crashreporter.ini": [f"Strings.crash{n}" for n in range(4)],
    "browser/empty.ftl": [],
}
BETA = {path: ids[: max(0, len(ids) - 2)] for path, ids in REFERENCE.items() if path != "browser/app.ftl"}
BETA["browser/app.ftl"] = REFERENCE["browser/app.ftl"][:6]


def render(path, ids, broken=False):
    if path.endswith(".ftl"):
        return _ftl(ids, broken)
    if path.endswith(".properties"):
        return _properties(ids)
    if path.endswith(".dtd"):
        return _dtd(ids, broken)
    return _ini(ids)


def generate_locale(seed, reference=REFERENCE):
    """{path: bytes} of a locale with missing files, missing messages, parse errors and obsolete messages."""
    rng = random.Random(seed)
    out = {}
    for path, ids in reference.items():
        roll = rng.random()
        if roll < 0.15:
            continue  # a missing file
        kept = [i for i in ids if rng.random() > 0.2]
        if rng.random() < 0.3:
            kept.append("obsolete-one" if not path.endswith(".ini") else "Strings.obsolete")
        broken = path.endswith((".ftl", ".dtd")) and rng.random() < 0.15
        out[path] = render(path, kept, broken)
    return out


LOCALES = {"de": 1, "fr": 2, "it": 3, "ja-JP-mac": 4, "sr-Latn": 5}


def in_folder(code, content):
    return {f"{code}/{path}": data for path, data in content.items()}


# --- the truth -------------------------------------------------------------------


def moz_l10n_compare(tmp_path, source_name, source_bytes, locales):
    """``moz-l10n compare --json --source`` over ``locales`` ({code: {path: bytes}}) written to disk."""
    root = tmp_path / f"truth-{random.random():.8f}"
    for code, content in locales.items():
        for path, data in content.items():
            target = root / "l10n" / code / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / "l10n" / code).mkdir(parents=True, exist_ok=True)
    source = root / "source" / source_name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(source_bytes)
    out = subprocess.run([MOZ_L10N, "compare", "--json", "--source", str(source),
                          *(str(root / "l10n" / code) for code in sorted(locales))],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def stored_result(tree, code):
    """What the worker holds for (tree, locale), in moz-l10n compare's JSON shape, and the run."""
    run = Active.objects.get(tree=tree, locale__code=code).run
    rows = RunFile.objects.filter(run=run)
    errors = {row.path: row.error for row in rows if row.error}
    missing = {row.path: row.missing for row in rows if row.missing}
    return {"errors": sorted(errors) or None, "missing": missing or None}, run


def as_truth(entry):
    return {"errors": sorted(entry["errors"]) if entry["errors"] else None, "missing": entry["missing"]}


def assert_matches_moz_l10n(tmp_path, tree, reference, locales):
    truth = moz_l10n_compare(tmp_path, "main.json", json.dumps(reference).encode(), locales)
    for code in locales:
        ours, run = stored_result(tree, code)
        assert ours == as_truth(truth[code]), code
        total = sum(len(ids) for ids in reference.values())
        errored = sum(len(reference[path]) for path in (truth[code]["errors"] or {}))
        missing = sum(len(ids) for ids in (truth[code]["missing"] or {}).values())
        assert (run.total, run.missing, run.errors) == (total, missing, len(truth[code]["errors"] or {}))
        assert run.changed == total - missing - errored
        assert run.completion == int(run.changed * 100 / total)
        assert (run.origin, run.computed_by) == (COMPUTED, PARSER)


# --- the world -------------------------------------------------------------------


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


class World:
    def __init__(self, github):
        self.github = github
        self.locales = {code: generate_locale(seed) for code, seed in LOCALES.items()}
        github.create_repo(SOURCE)
        github.create_repo(L10N)
        self.reference = {"main": dict(REFERENCE), "beta": dict(BETA)}
        source = {path: render(path, ids) for path, ids in REFERENCE.items()}
        source.update({f"_data/{ch}.json": json.dumps(ref).encode() for ch, ref in self.reference.items()})
        github.commit(SOURCE, source)
        github.commit(L10N, {path: data for code, content in self.locales.items()
                             for path, data in in_folder(code, content).items()} | {"README.md": b"hi"})
        call_command("track", github.repo_url(SOURCE))
        call_command("track", github.repo_url(L10N))
        self.source = Repository.objects.get(name=SOURCE)
        self.l10n = Repository.objects.get(name=L10N)

    def push(self, name, changes):
        self.github.commit(name, changes)
        repository = Repository.objects.get(name=name)
        return for_repository(repository).reprocess(repository)

    def push_locale(self, code, changes):
        for path, data in changes.items():
            if data is None:
                self.locales[code].pop(path, None)
            else:
                self.locales[code][path] = data
        return self.push(L10N, in_folder(code, changes))

    def push_channel(self, channel, reference):
        self.reference[channel] = reference
        return self.push(SOURCE, {f"_data/{channel}.json": json.dumps(reference).encode()})


@pytest.fixture
def world(github, db):
    return World(github)


def runs_by_locale(tree):
    return {code: count for code, count in
            [(c, Run.objects.filter(tree=tree, locale__code=c).count()) for c in LOCALES]}


# --- tests -------------------------------------------------------------------------


@pytest.mark.parametrize("found", [
    {},  # every file missing
    {"a.ftl": Parsed(frozenset({"x"})), "b.properties": Parsed(error="bad \u00e9scape")},
    {"a.ftl": Parsed(frozenset({"x", "y", "z\u00e9"})), "b.properties": Parsed(frozenset({"k"}))},  # complete
])
def test_a_comparisons_digest_is_the_stored_formula(found):
    """Runs store the digest and a push that changes nothing is found by it: a faster encoding of it must
    give the very digest older workers stored."""
    reference = {"a.ftl": ["x", "y", "z\u00e9"], "b.properties": ["k", "l"], "empty.ftl": []}
    comparison = compare(reference, found)
    stored_formula = [comparison.total, comparison.changed, comparison.missing, comparison.errors,
                      comparison.obsolete,
                      [[f.path, list(f.missing), f.missing_file, f.error] for f in comparison.files]]
    expected = hashlib.sha256(json.dumps(stored_formula, ensure_ascii=False).encode()).hexdigest()
    assert comparison.digest == expected


def test_channel_trees_match_moz_l10n_compare_and_share_one_parse(world, tmp_path):
    call_command("tree", "add-channels", SOURCE, "--locales", L10N)

    main, beta = Tree.objects.get(code="firefox-main"), Tree.objects.get(code="firefox-beta")
    assert main.computed and main.locales_repository == world.l10n and main.config_path == "_data/main.json"
    assert_matches_moz_l10n(tmp_path, main, world.reference["main"], world.locales)
    assert_matches_moz_l10n(tmp_path, beta, world.reference["beta"], world.locales)
    # Every distinct locale file the channels list was parsed once, for both channels.
    listed = {(path.rsplit(".", 1)[1], blob) for path, blob in for_repository(world.l10n).list_files(world.l10n, world.github.tip(L10N))
              if "/" in path and REFERENCE.get(path.split("/", 1)[1])}
    assert ParsedFile.objects.count() == len(listed)
    run = Active.objects.get(tree=main, locale__code="de").run
    assert run.reference_revision.revision == world.github.tip(SOURCE)
    assert run.locale_revision.revision == world.github.tip(L10N)
    assert set(run.revisions.values_list("revision", flat=True)) == {world.github.tip(SOURCE), world.github.tip(L10N)}
    assert Active.objects.filter(tree=main).count() == len(LOCALES)  # README.md is no locale


def test_a_locale_push_recomputes_that_locale_only(world, tmp_path):
    trees.add_channel_trees(world.source, world.l10n)
    main = Tree.objects.get(code="firefox-main")
    before, parsed_before = runs_by_locale(main), ParsedFile.objects.count()

    world.push_locale("fr", {"browser/app.ftl": render("browser/app.ftl", REFERENCE["browser/app.ftl"]),
                             "toolkit/chrome/global.dtd": None})

    after = runs_by_locale(main)
    assert after == {**before, "fr": before["fr"] + 1}
    assert ParsedFile.objects.count() == parsed_before + 1  # one new content, parsed once for both channels
    assert_matches_moz_l10n(tmp_path, main, world.reference["main"], world.locales)
    assert_matches_moz_l10n(tmp_path, Tree.objects.get(code="firefox-beta"), world.reference["beta"], world.locales)
    active = Active.objects.get(tree=main, locale__code="fr")
    assert active.run.locale_revision.revision == world.github.tip(L10N)


def test_a_push_that_changes_no_number_adds_no_run_but_records_the_check(world):
    trees.add_channel_trees(world.source, world.l10n)
    main = Tree.objects.get(code="firefox-main")
    runs = Run.objects.count()

    world.push(L10N, {"de/browser/notes.txt": b"not a localized file", "README.md": b"changed"})

    assert Run.objects.count() == runs
    active = Active.objects.get(tree=main, locale__code="de")
    assert active.checked_locale.revision == world.github.tip(L10N)
    assert active.run.locale_revision.revision != world.github.tip(L10N)


def test_a_reference_push_recomputes_every_locale_of_its_channel(world, tmp_path):
    trees.add_channel_trees(world.source, world.l10n)
    main, beta = Tree.objects.get(code="firefox-main"), Tree.objects.get(code="firefox-beta")
    beta_runs = Run.objects.filter(tree=beta).count()
    reference = dict(world.reference["main"])
    reference["browser/app.ftl"] = reference["browser/app.ftl"] + ["app-new"]

    world.push_channel("main", reference)

    assert_matches_moz_l10n(tmp_path, main, reference, world.locales)
    assert Run.objects.filter(tree=beta).count() == beta_runs
    for code in LOCALES:
        run = Active.objects.get(tree=main, locale__code=code).run
        assert run.reference_revision.revision == world.github.tip(SOURCE)


def test_new_and_vanished_channels_and_locales(world):
    trees.add_channel_trees(world.source, world.l10n)
    world.github.commit(SOURCE, {"_data/beta.json": None, "_data/esr153.json": json.dumps(BETA).encode()})
    world.push(L10N, {f"pl/{path}": data for path, data in generate_locale(9).items()})
    for_repository(world.source).reprocess(world.source)

    assert Tree.objects.get(code="firefox-beta").archived  # the push archived it; its history stays
    assert Run.objects.filter(tree__code="firefox-beta").exists()
    assert Active.objects.filter(tree__code="firefox-main", locale__code="pl").exists()  # a new locale

    result = trees.add_channel_trees(world.source, world.l10n)
    assert [t.code for t in result.added] == ["firefox-esr153"]
    assert Active.objects.filter(tree__code="firefox-esr153").count() == len(LOCALES) + 1

    world.push(L10N, {f"it/{path}": None for path in world.locales["it"]})
    done = computation.recompute(Tree.objects.get(code="firefox-main"))
    assert done.vanished == ["it"]
    assert Run.objects.filter(tree__code="firefox-main", locale__code="it").exists()


def test_an_invalid_reference_fails_its_tree_only(world):
    trees.add_channel_trees(world.source, world.l10n)
    main_runs = Run.objects.filter(tree__code="firefox-main").count()
    beta = dict(BETA)
    beta["browser/app.ftl"] = beta["browser/app.ftl"] + ["app-11"]

    world.push(SOURCE, {"_data/main.json": b'{"browser/app.ftl": "not a list"}',
                        "_data/beta.json": json.dumps(beta).encode()})

    assert Run.objects.filter(tree__code="firefox-main").count() == main_runs
    error = SyncState.objects.get(repository=world.source).last_error
    assert "firefox-main" in error and "not a list of strings" in error
    run = Active.objects.get(tree__code="firefox-beta", locale__code="de").run
    assert run.reference_revision.revision == world.github.tip(SOURCE)


def test_a_hostile_file_is_a_counted_error_of_its_locale(world, settings):
    settings.COMPARE_MAX_FILE_BYTES = 10_000
    trees.add_channel_trees(world.source, world.l10n)
    world.push_locale("de", {"browser/app.ftl": b"x = " + b"a" * 20_000 + b"\n",
                             "browser/chrome/prefs.properties": b"\xff\xfe\x00garbage{{{"})
    run = Active.objects.get(tree__code="firefox-main", locale__code="de").run
    errors = {f.path: f.error for f in RunFile.objects.filter(run=run) if f.error}
    assert "browser/app.ftl" in errors and "COMPARE_MAX_FILE_BYTES" in errors["browser/app.ftl"]
    assert run.errors == len(errors)


def test_an_older_comparison_never_displaces_a_newer_one(world):
    trees.add_channel_trees(world.source, world.l10n)
    main = Tree.objects.get(code="firefox-main")
    old_tip = world.github.tip(L10N)
    world.push_locale("de", {"browser/app.ftl": None})
    active = Active.objects.get(tree=main, locale__code="de")

    stale = computation.LocaleSource("de", world.l10n, old_tip, "de/")
    comparison = compare(REFERENCE, {path: Parsed(frozenset(ids)) for path, ids in REFERENCE.items()})
    stored = results.store([results.TreeComparisons(main, world.source, world.github.tip(SOURCE),
                                                    [(stale, comparison)])])

    assert stored[main.pk].stale == 1
    assert Active.objects.get(tree=main, locale__code="de").run_id == active.run_id


def test_the_compare_command_and_tree_add(world, capsys):
    call_command("tree", "add", "custom", "--reference", f"{SOURCE}:_data/beta.json", "--locales", L10N)
    call_command("compare", "custom", "--locale", "de")
    out = capsys.readouterr().out
    assert "custom: 5 locales compared" in out and "custom: 1 locales compared, 0 new runs, 1 unchanged" in out


# --- Mercurial: a forest with a repository per locale, a TOML configuration ---------


TOML = b"""
basepath = "."
locales = ["de", "fr"]
[[paths]]
reference = "en-US/**"
l10n = "{l10n_base}/{locale}/**"
"""


def test_a_forest_tree_with_a_toml_reference_matches_moz_l10n(hgmo, db, tmp_path):
    reference = {path: render(path, ids) for path, ids in REFERENCE.items() if ids}
    hgmo.create_repo("gecko-strings")
    hgmo.commit_and_push("gecko-strings", {"_configs/browser.toml": TOML.replace(b'"."', b'".."'),
                                           **{f"en-US/{p}": d for p, d in reference.items()}})
    forest = Forest.objects.create(name="l10n-central", url=hgmo.url + "l10n-central/")
    source = Repository.objects.create(name="gecko-strings", url=hgmo.repo_url("gecko-strings"))
    ingest_pushes(source)
    locales = {"de": generate_locale(11, {p: REFERENCE[p] for p in reference}),
               "fr": generate_locale(12, {p: REFERENCE[p] for p in reference})}
    for code, content in locales.items():
        hgmo.create_repo(f"l10n-central/{code}")
        hgmo.commit_and_push(f"l10n-central/{code}", content)
        call_command("track", hgmo.repo_url(f"l10n-central/{code}"), "--forest", "l10n-central", "--kind", "hg")

    tree, done = trees.add_tree("central", source, "_configs/browser.toml", forest=forest)

    assert sorted(done.compared) == ["de", "fr"]
    root = tmp_path / "truth"
    for path, data in reference.items():
        (root / "en-US" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "en-US" / path).write_bytes(data)
    (root / "_configs").mkdir()
    (root / "_configs" / "browser.toml").write_bytes(TOML.replace(b'"."', b'".."'))
    for code, content in locales.items():
        for path, data in content.items():
            (root / "l10n" / code / path).parent.mkdir(parents=True, exist_ok=True)
            (root / "l10n" / code / path).write_bytes(data)
    out = subprocess.run([MOZ_L10N, "compare", "--json", "--source", str(root / "_configs" / "browser.toml"),
                          str(root / "l10n" / "de"), str(root / "l10n" / "fr")], check=True, capture_output=True)
    truth = json.loads(out.stdout)
    for code in locales:
        ours, _ = stored_result(tree, code)
        expected = as_truth(truth[code])
        assert ours["errors"] == expected["errors"]
        assert {p: sorted(ids) for p, ids in (ours["missing"] or {}).items()} == {
            p: sorted(ids) for p, ids in (expected["missing"] or {}).items()}

    # A push to one locale's repository recomputes it alone.
    runs = runs_by_locale(tree)
    hgmo.commit_and_push("l10n-central/de", {"browser/app.ftl": render("browser/app.ftl", [])})
    ingest_pushes(Repository.objects.get(name="l10n-central/de"))
    after = runs_by_locale(tree)
    assert after["de"] == runs["de"] + 1 and after["fr"] == runs["fr"]


# --- parallel workers ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_locale_push_racing_a_reference_push_ends_with_both_newest_tips(github):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    if connection.vendor == "sqlite":
        pytest.skip("parallel writers need PostgreSQL or MariaDB (row locks)")
    world = World(github)
    trees.add_channel_trees(world.source, world.l10n)
    main = Tree.objects.get(code="firefox-main")

    def ingest(name):
        try:
            repository = Repository.objects.get(name=name)
            return for_repository(repository).reprocess(repository)
        finally:
            connections.close_all()

    for round in range(3):
        reference = dict(world.reference["main"])
        reference["browser/app.ftl"] = reference["browser/app.ftl"] + [f"race-{round}"]
        world.reference["main"] = reference
        github.commit(SOURCE, {"_data/main.json": json.dumps(reference).encode()})
        github.commit(L10N, {"de/browser/app.ftl": render("browser/app.ftl", [f"race-{round}", "app-1"])})
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ingest, [SOURCE, L10N]))
        active = Active.objects.select_related("checked_reference", "checked_locale").get(tree=main, locale__code="de")
        assert (active.checked_reference.revision, active.checked_locale.revision) == (
            github.tip(SOURCE), github.tip(L10N))
        assert active.run.reference_revision == active.checked_reference
        assert active.run.locale_revision == active.checked_locale
