"""Pure parsing of task-completed messages, task definitions and elmo.json."""

import copy

import pytest

from l10n.elmo import parse_elmo, parse_task_definition, require_configured_route
from plumbing.errors import PermanentError
from worker.taskcluster import parse_task_completed

A, B = "a" * 40, "b" * 40
SUMMARY = {
    "errors": 0, "warnings": 1, "missing": 12, "missing_w": 80, "report": 0, "obsolete": 2,
    "changed": 8493, "changed_w": 46266, "unchanged": 1093, "unchanged_w": 1419, "keys": 877,
}
ELMO = {
    "version": "1.0",
    "compare-locales": "9.0.5",
    "repository": "https://hg.mozilla.org/l10n/gecko-strings/",
    "comparisons": [
        {
            "locale": "de",
            "config": "_configs/browser.toml",
            "artifact": "public/compares/browser.de.json",
            "revisions": {"/l10n/gecko-strings/": A, "/l10n-central/de/": B},
            "summary": SUMMARY,
        }
    ],
}


def elmo(**changes):
    document = copy.deepcopy(ELMO)
    comparison = document["comparisons"][0]
    for key, value in changes.items():
        if key in comparison:
            comparison[key] = value
        else:
            document[key] = value
    return document


def test_elmo_json_parses_to_comparisons_with_completion():
    report = parse_elmo(ELMO)
    assert report.repository == "https://hg.mozilla.org/l10n/gecko-strings/"
    (comparison,) = report.comparisons
    assert comparison.revisions == (
        ("https://hg.mozilla.org/l10n-central/de/", B),
        ("https://hg.mozilla.org/l10n/gecko-strings/", A),
    )
    assert comparison.counts == {**SUMMARY, "missingInFiles": 0}
    assert comparison.total == 8493 + 1093 + 12
    assert comparison.completion == int(8493 * 100 / (8493 + 1093 + 12))


def test_older_summaries_count_missing_keys_as_zero_and_keep_missing_in_files():
    report = parse_elmo(elmo(summary={"changed": 10, "unchanged": 5, "missingInFiles": 5}))
    (comparison,) = report.comparisons
    assert comparison.counts["missing"] == 0 and comparison.counts["errors"] == 0
    assert comparison.counts["missingInFiles"] == 5
    assert comparison.completion == 50


def test_repository_falls_back_to_task_source():
    document = elmo()
    del document["repository"]
    assert parse_elmo(document, "https://hg.mozilla.org/l10n/gecko-strings").repository == (
        "https://hg.mozilla.org/l10n/gecko-strings/"
    )
    with pytest.raises(PermanentError, match="names no repository"):
        parse_elmo(document)


def test_empty_summary_has_zero_completion():
    (comparison,) = parse_elmo(elmo(summary={})).comparisons
    assert comparison.completion == 0 and comparison.total == 0


@pytest.mark.parametrize(
    "document, reason",
    [
        (elmo(version="2.0"), "version '2.0' is not supported"),
        (elmo(version=1), "version"),
        (elmo(locale="de_DE"), "BCP 47"),
        (elmo(locale="../x"), "BCP 47"),
        (elmo(revisions={"/l10n-central/de/": "abc"}), "40 lowercase hex"),
        (elmo(revisions={"l10n-central/de/": A}), "not an absolute path"),
        (elmo(revisions={"/l10n/../etc/": A}), "not an absolute path"),
        (elmo(artifact="public/../../private/x"), "not a public artifact name"),
        (elmo(artifact="private/x.json"), "not a public artifact name"),
        (elmo(config="/etc/passwd"), "not a safe relative path"),
        (elmo(summary={**SUMMARY, "missing": -1}), "minimum"),
        (elmo(summary={**SUMMARY, "missing": 10**12}), "maximum"),
        (elmo(summary={**SUMMARY, "missing": "12"}), "not of type"),
        (elmo(repository="file:///etc/"), "not an http"),
        (elmo(comparisons={}), "not of type"),
        ({"version": "1.0"}, "'comparisons' is a required property"),
    ],
)
def test_invalid_elmo_json_is_a_permanent_error(document, reason):
    with pytest.raises(PermanentError, match=reason):
        parse_elmo(document)


def test_duplicate_comparison_is_refused():
    document = elmo()
    document["comparisons"].append(copy.deepcopy(document["comparisons"][0]))
    with pytest.raises(PermanentError, match="appears twice"):
        parse_elmo(document)


def test_task_completed_message_names_task_and_run():
    message = {"version": 1, "status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ", "runs": []}, "runId": 2}
    completed = parse_task_completed(message, "https://tc.example")
    assert (completed.root_url, completed.task_id, completed.run_id) == ("https://tc.example", "fN1SbArXTPSVFNUvaOlinQ", 2)


@pytest.mark.parametrize(
    "message",
    [
        {"status": {"taskId": "short"}, "runId": 0},
        {"status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": -1},
        {"status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}},
        {"status": {"taskId": "../../../etc/passwd.xxx"}, "runId": 0},
        {"version": 2, "status": {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}, "runId": 0},
    ],
)
def test_malformed_task_completed_messages(message):
    with pytest.raises(PermanentError, match="task-completed message is invalid"):
        parse_task_completed(message, "https://tc.example")


def test_task_definition_created_and_source():
    task = parse_task_definition({"created": "2020-05-04T12:00:00.000Z", "metadata": {"source": "https://x/"}})
    assert task.created.isoformat() == "2020-05-04T12:00:00+00:00" and task.source == "https://x/"
    with pytest.raises(PermanentError, match="created"):
        parse_task_definition({"created": "yesterday", "metadata": {}})


@pytest.mark.parametrize("bindings, routes, counts", [
    (["route.project.l10n.elmo.v1"], ["index.x", "project.l10n.elmo.v1"], True),
    (["route.project.l10n.elmo.v1"], [], False),
    (["route.project.l10n.elmo.v1"], ["route.project.l10n.elmo.v1"], False),  # bound as route.route.…
    (["route.project.l10n.elmo.v1"], ["project.l10n.elmo.v1.x", "project.l10n.elmo"], False),
    (["route.project.l10n.elmo.v1"], ["project.l10n.*", "#"], False),  # wildcards only bind, never match
    (["route.project.l10n.*"], ["project.l10n.elmo"], True),
    (["route.project.l10n.*"], ["project.l10n.elmo.v1"], False),
    (["route.project.l10n.#"], ["project.l10n"], True),
    (["route.project.#.v1"], ["project.l10n.elmo.v1"], True),
    (["primary.#"], ["project.l10n.elmo.v1"], False),
    (["route.other", "route.project.l10n.elmo.v1"], ["project.l10n.elmo.v1"], True),
])
def test_a_task_counts_only_with_a_configured_route_in_its_definition(bindings, routes, counts):
    task = parse_task_definition({"created": "2020-05-04T12:00:00.000Z", "metadata": {}, "routes": routes})
    if counts:
        require_configured_route("fN1SbArXTPSVFNUvaOlinQ", task, bindings)
    else:
        with pytest.raises(PermanentError, match=r"task fN1SbArXTPSVFNUvaOlinQ carries none of the configured routes"):
            require_configured_route("fN1SbArXTPSVFNUvaOlinQ", task, bindings)


def test_task_definition_routes_are_bounded():
    with pytest.raises(PermanentError, match="task definition is invalid at routes"):
        parse_task_definition({"created": "2020-05-04T12:00:00.000Z", "metadata": {}, "routes": ["x"] * 1001})
