"""The Firefox-shaped world (simulated/firefox.py), held to the real ``moz-l10n compare`` over a
checkout of the git repositories it writes. Plain pytest (no database)."""

import json
import subprocess

import pytest
from moz.l10n.bin.compare import msg_ids

from simulated import firefox
from simulated.github import SimulatedGitHub

SOURCE, L10N = firefox.SOURCE, firefox.L10N


# conftest's autouse fixtures need Django, which nothing here uses.
@pytest.fixture
def repository_base():
    pass


@pytest.fixture
def no_worker_left_behind():
    pass


@pytest.fixture
def github(tmp_path):
    with SimulatedGitHub(tmp_path / "github") as server:
        yield server


def checkout(github, tmp_path, name):
    """Both repositories at their tips, as plain directories: what moz-l10n reads."""
    destination = tmp_path / "checkouts" / name / github.tip(name)
    return destination if destination.is_dir() else firefox.checkout(github.git_dir(name), github.tip(name),
                                                                      destination)


def compare(github, tmp_path, channel, codes):
    """The real moz-l10n over checkouts of the published tips: {code: (missing, errors)}."""
    source, l10n = checkout(github, tmp_path, SOURCE), checkout(github, tmp_path, L10N)
    output = firefox.moz_l10n_compare(source / "_data" / f"{channel}.json", [l10n / code for code in codes])
    return {code: (result["missing"] or {}, result["errors"] or {}) for code, result in output.items()}


def completion(data, missing, errors):
    """moz-l10n's numbers as the issue defines them: the ids of a file that fails to parse are
    neither missing nor translated."""
    total = sum(len(ids) for ids in data.values())
    changed = total - sum(len(ids) for ids in missing.values()) - sum(len(data[path]) for path in errors)
    return int(changed * 100 / total)


def channel_data(github, tmp_path, channel):
    return json.loads((checkout(github, tmp_path, SOURCE) / "_data" / f"{channel}.json").read_text())


def changed_paths(github, name, before, after):
    out = subprocess.run(["git", "--git-dir", str(github.git_dir(name)), "diff", "--name-only", before, after],
                         capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def test_a_world_is_what_moz_l10n_finds_in_every_channel(github, tmp_path):
    world = firefox.generate(files=30, messages=1200, locales=10, seed=7)
    firefox.publish(github, world)
    codes = list(world.locales)
    source = checkout(github, tmp_path, SOURCE)
    assert sorted(p.name for p in (source / "_data").iterdir()) == sorted(f"{c}.json" for c in firefox.CHANNELS)
    data = {channel: channel_data(github, tmp_path, channel) for channel in firefox.CHANNELS}

    for channel in firefox.CHANNELS:
        # The reference holds every message of every channel: en-US against itself lacks nothing.
        assert firefox.moz_l10n_compare(source / "_data" / f"{channel}.json", [source]) == {
            source.name: {"errors": None, "missing": None}}
        found = compare(github, tmp_path, channel, codes)
        assert set(found) == set(codes)
        completions = {code: completion(data[channel], *found[code]) for code in codes}
        assert all(60 <= value <= 100 for value in completions.values()), (channel, completions)
        for code in codes:
            expected = world.expected(code, channel)
            assert (found[code][0], sorted(found[code][1])) == (expected.missing, list(expected.errors))
            assert completions[code] == expected.completion
    main = {code: completion(data["main"], *compare(github, tmp_path, "main", codes)[code]) for code in codes}
    assert main[codes[0]] == 100 and min(main.values()) < 80 and len(set(main.values())) > 5

    found = compare(github, tmp_path, "main", codes)
    # Parse errors: a few locales, one file each, in formats where moz-l10n reports them.
    broken = {code: list(errors) for code, (_, errors) in found.items() if errors}
    assert 1 <= len(broken) <= len(codes) // 3
    assert all(len(paths) == 1 and paths[0].endswith((".ftl", ".dtd")) for paths in broken.values())
    # Whole files missing (every id of the file listed), and single messages.
    whole = [path for missing, _ in found.values() for path, ids in missing.items() if ids == data["main"][path]]
    partial = [path for missing, _ in found.values() for path, ids in missing.items() if ids != data["main"][path]]
    assert whole and len(partial) > len(whole)

    # Channels: most messages shared, older ones lacking newer files and messages and keeping removed ones.
    ids = {channel: {(path, i) for path, names in data[channel].items() for i in names} for channel in data}
    shared = set.intersection(*ids.values())
    assert len(shared) > 0.9 * len(ids["main"])
    assert ids["main"] - ids["esr115"] and ids["esr115"] - ids["main"]
    assert set(data["main"]) - set(data["esr115"]) and set(data["esr115"]) - set(data["main"])
    formats = {path.rsplit(".", 1)[1] for path in data["main"]}
    assert formats == {"ftl", "properties", "dtd", "ini"}
    assert any(i.startswith("-") for path, i in ids["main"] if path.endswith(".ftl"))  # Fluent terms
    assert any(i.startswith("Strings.") for path, i in ids["main"] if path.endswith(".ini"))

    # Obsolete messages: ids a locale's file has that no channel ships (moz.l10n's own parser reads them).
    l10n = checkout(github, tmp_path, L10N)
    every_id = set.union(*ids.values())
    obsolete = {code: [(path, i) for path in data["main"] if (l10n / code / path).exists() and path not in broken.get(
        code, []) for i in msg_ids(str(l10n / code / path)) if (path, i) not in every_id] for code in codes}
    assert 1 <= sum(1 for found_ids in obsolete.values() if found_ids) < len(codes)


def test_pushes_change_what_moz_l10n_finds_as_intended(github, tmp_path):
    world = firefox.generate(files=20, messages=600, locales=4, seed=3)
    firefox.publish(github, world)
    codes = list(world.locales)
    code = codes[1]
    before_push = compare(github, tmp_path, "main", codes)

    # Translating: three files of one locale change, and it lacks fewer messages; no other locale moves.
    before, after = firefox.push_locale(github, world, code, files=3)
    assert [p.split("/")[0] for p in changed_paths(github, L10N, before, after)] == [code] * 3
    translated = compare(github, tmp_path, "main", codes)
    lacking = {c: sum(map(len, translated[c][0].values())) for c in codes}
    assert lacking[code] < sum(map(len, before_push[code][0].values()))
    assert {c: translated[c] for c in codes if c != code} == {c: before_push[c] for c in codes if c != code}

    # Rewording: three files change, no number does, in any channel.
    before, after = firefox.push_locale(github, world, code, files=3, reword=True)
    assert len(changed_paths(github, L10N, before, after)) == 3
    for channel in firefox.CHANNELS:
        if channel == "main":
            assert compare(github, tmp_path, channel, codes) == translated
        else:
            assert compare(github, tmp_path, channel, [code])[code][0] == {
                path: ids for path, ids in world.expected(code, channel).missing.items()}

    # The update job: two messages in each of five files and in every channel's data; every locale of every
    # channel lacks them (but for a file of it that does not parse, whose ids count neither way).
    lacked = {ch: {c: sum(map(len, world.expected(c, ch).missing.values())) for c in codes} for ch in firefox.CHANNELS}
    before, after = firefox.push_reference_update(github, world, files=5)
    paths = changed_paths(github, SOURCE, before, after)
    assert sorted(p for p in paths if p.startswith("_data/")) == sorted(f"_data/{c}.json" for c in firefox.CHANNELS)
    assert len(paths) == 5 + len(firefox.CHANNELS)
    updated = [p for p in paths if not p.startswith("_data/")]
    for channel in firefox.CHANNELS:
        found = compare(github, tmp_path, channel, codes)
        assert {c: sum(map(len, found[c][0].values())) for c in codes} == {
            c: lacked[channel][c] + 2 * len([p for p in updated if p not in found[c][1]]) for c in codes}


def test_same_seed_same_commits_and_fewer_locales_are_the_first_ones(tmp_path):
    tips = []
    for run in ("a", "b"):
        with SimulatedGitHub(tmp_path / run) as github:
            tips.append(firefox.publish(github, firefox.generate(files=10, messages=200, locales=3, seed=5)))
    assert tips[0] == tips[1]
    few, many = firefox.generate(locales=3, seed=1), firefox.generate(locales=30, seed=1)
    assert few.reference_files() == many.reference_files()
    assert {c: few.locale_files(c) for c in few.locales} == {c: many.locale_files(c) for c in list(many.locales)[:3]}
    assert firefox.generate(locales=3, seed=2).reference_files() != few.reference_files()


def test_the_benchmark_world_has_firefox_proportions(github, tmp_path):
    """The default world (what bench/compare_push.py builds): ~100 files, ~5,000 messages, 30 locales at
    60-100 % of main by moz-l10n's count."""
    world = firefox.generate(seed=0)
    firefox.publish(github, world)
    data = channel_data(github, tmp_path, "main")
    assert 90 <= len(data) <= 100 and 4500 <= sum(map(len, data.values())) <= 5000
    found = compare(github, tmp_path, "main", list(world.locales))
    values = [completion(data, *result) for result in found.values()]
    assert len(values) == 30 and min(values) >= 60 and max(values) == 100
    assert 2 <= sum(1 for _, errors in found.values() if errors) <= 10


def test_the_simulated_github_serves_both_repositories_over_smart_http(github, tmp_path):
    world = firefox.generate(files=10, messages=200, locales=3, seed=4)
    firefox.publish(github, world)
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for name in (SOURCE, L10N):
        subprocess.run(["git", "clone", "--quiet", github.html_url(name), str(tmp_path / name)], env=env, check=True,
                       capture_output=True, timeout=120)
    for channel in firefox.CHANNELS:
        assert (tmp_path / SOURCE / "_data" / f"{channel}.json").read_bytes() == world.data_file(channel)
    code = list(world.locales)[1]
    for path, content in world.locale_files(code).items():
        assert (tmp_path / L10N / code / path).read_bytes() == content
