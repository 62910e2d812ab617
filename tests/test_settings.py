"""Configuration (DESIGN §3): every setting in the README, parsed once; every bad value stops a
command with one line naming it; the pure parsers behind them."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from plumbing.urls import normalise_root_url
from settings.environment import ConfigurationError, Environment
from settings.pulse import EMBEDDED_BROKER, broker_url, extra_sources, retry_delays
from simulated.harness import PROJECT
from worker.config import mask_password


def readme_settings():
    """The variable names in the first column of the README's configuration table."""
    text = (PROJECT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_readme_lists_exactly_the_settings_the_project_reads():
    assert readme_settings() == set(settings.ENVIRONMENT_VARIABLES)


# Per setting: (bad value, other variables it needs, what the one line must say).
BAD_VALUES = {
    "DATABASE_URL": [("nosuchdb://x/y", {}, "DATABASE_URL is not a database URL"),
                     ("postgres://127.0.0.1:5432", {}, "DATABASE_URL names no database")],
    "PULSE_URL": [("http://example.com/", {}, "PULSE_URL must start with amqp://"),
                  ("amqp://pulse.example/", {}, "PULSE_URL names no user"),
                  ("amqp://a%20b:p@pulse.example/", {}, "the user in PULSE_URL must be a Pulse user name")],
    "PULSE_USER": [("", {"PULSE_HOST": "pulse.example"}, "PULSE_USER is required"),
                   ("elmo/../x", {"PULSE_PASSWORD": "p"}, "PULSE_USER must be a Pulse user name")],
    "PULSE_PASSWORD": [("", {"PULSE_USER": "elmo"}, "PULSE_PASSWORD is required")],
    "PULSE_HOST": [("pulse example", {}, "PULSE_HOST must be a host name")],
    "PULSE_PORT": [("x", {}, "PULSE_PORT must be a whole number"), ("70000", {}, "PULSE_PORT must be at most 65535")],
    "PULSE_SSL": [("maybe", {}, "PULSE_SSL must be true or false")],
    "PULSE_VHOST": [("a b", {}, "PULSE_VHOST must be a virtual host name")],
    "PULSE_DECLARE_EXCHANGES": [("ture", {}, "PULSE_DECLARE_EXCHANGES must be true or false")],
    "PULSE_QUEUE_EXPIRES": [("10", {}, "PULSE_QUEUE_EXPIRES must be at least 60"),
                            ("1e9", {}, "PULSE_QUEUE_EXPIRES must be a whole number")],
    "PULSE_PREFETCH": [("0", {}, "PULSE_PREFETCH must be at least 1")],
    "PULSE_HEARTBEAT": [("-1", {}, "PULSE_HEARTBEAT must be at least 0")],
    "PULSE_RETRY_DELAYS": [("10,-1", {}, "PULSE_RETRY_DELAYS must be positive"),
                           (" , ", {}, "PULSE_RETRY_DELAYS is set but names nothing")],
    "PULSE_MAX_RETRIES": [("none", {}, "PULSE_MAX_RETRIES must be a whole number")],
    "PULSE_DELIVERY_LIMIT": [("0", {}, "PULSE_DELIVERY_LIMIT must be at least 1")],
    "PULSE_QUEUE_MAX_LENGTH": [("0", {}, "PULSE_QUEUE_MAX_LENGTH must be at least 1"),
                               ("4k", {}, "PULSE_QUEUE_MAX_LENGTH must be a whole number")],
    "TASKCLUSTER_ROUTES": [(",", {}, "TASKCLUSTER_ROUTES is set but names nothing")],
    "TASKCLUSTER_ROOT_URL": [("ftp://tc.example", {}, "TASKCLUSTER_ROOT_URL must be an http(s) URL")],
    "TASKCLUSTER_EXTRA_SOURCES": [("[{", {}, "TASKCLUSTER_EXTRA_SOURCES is not valid JSON"),
                                  ('[{"pulse_url": "amqp://u:p@h/", "root_url": "x"}]', {},
                                   "TASKCLUSTER_EXTRA_SOURCES[0].root_url must be an http(s) URL")],
    "ELMO_ARTIFACT": [("private/elmo.json", {}, "ELMO_ARTIFACT must be a public artifact name")],
    "METRICS_PORT": [("http", {}, "METRICS_PORT must be a whole number")],
    "LOG_FORMAT": [("xml", {}, "LOG_FORMAT must be one of text, json")],
    "LOG_LEVEL": [("LOUD", {}, "LOG_LEVEL must be one of DEBUG")],
    "SENTRY_DSN": [("sentry", {}, "SENTRY_DSN must be a https or http URL"),
                   ("https://sentry.example/1", {}, "SENTRY_DSN is not a Sentry DSN")],
    "HEARTBEAT_FILE": [("{tmp}", {}, "HEARTBEAT_FILE must be a file, not the directory")],
    "HEALTHCHECK_MAX_AGE": [("soon", {}, "HEALTHCHECK_MAX_AGE must be a number of seconds")],
    "BACKFILL_INTERVAL": [("-5", {}, "BACKFILL_INTERVAL must be at least 0")],
    "BACKFILL_LIMIT": [("1.5", {}, "BACKFILL_LIMIT must be a whole number")],
    "DEAD_LETTER_RETENTION": [("0", {}, "DEAD_LETTER_RETENTION must be at least 1"),
                              ("90d", {}, "DEAD_LETTER_RETENTION must be a whole number")],
    "DEAD_LETTER_RETENTION_UNRESOLVED": [("-1", {}, "DEAD_LETTER_RETENTION_UNRESOLVED must be at least 1")],
    "WORKER_THREADS": [("0", {}, "WORKER_THREADS must be at least 1"),
                       ("many", {}, "WORKER_THREADS must be a whole number")],
    "KNOWN_REPOSITORIES_TTL": [("nan", {}, "KNOWN_REPOSITORIES_TTL must be a number of seconds")],
    "REPOSITORY_BASE": [("{tmp}/a-file", {}, "REPOSITORY_BASE must be a directory, not the file")],
    "HTTP_TIMEOUT": [("abc", {}, "HTTP_TIMEOUT must be a number of seconds"),
                     ("inf", {}, "HTTP_TIMEOUT must be a number of seconds"),
                     ("0", {}, "HTTP_TIMEOUT must be at least 0.1")],
    "VCS_TIMEOUT": [("0", {}, "VCS_TIMEOUT must be at least 1")],
    "VCS_STALL_TIMEOUT": [("0.5", {}, "VCS_STALL_TIMEOUT must be at least 1"),
                          ("a minute", {}, "VCS_STALL_TIMEOUT must be a number of seconds")],
    "HG_TIMEOUT": [("0", {}, "HG_TIMEOUT must be at least 1")],
    "PUSHLOG_PAGE_SIZE": [("0", {}, "PUSHLOG_PAGE_SIZE must be at least 1")],
    "COMPARE_MAX_FILE_BYTES": [("0", {}, "COMPARE_MAX_FILE_BYTES must be at least 1")],
    "UPSTREAM_LAG_LIMIT": [("10 minutes", {}, "UPSTREAM_LAG_LIMIT must be a number of seconds")],
    "HG_BINARY": [("/nonexistent/hg", {}, "HG_BINARY must name an executable program")],
    "SECRET_KEY": [("short", {}, "SECRET_KEY must be at least 32 characters")],
    "VAR_DIR": [("{tmp}/a-file", {}, "VAR_DIR must be a directory, not the file")],
    "DEBUG": [("ture", {}, "DEBUG must be true or false")],
    "ALLOWED_HOSTS": [("exa mple.com", {}, "ALLOWED_HOSTS must list host names"),
                      (",", {}, "ALLOWED_HOSTS is set but names nothing")],
}
CASES = [(name, value, extra, says) for name, cases in BAD_VALUES.items() for value, extra, says in cases]


def test_every_setting_in_the_readme_has_its_bad_values_tried():
    assert readme_settings() <= BAD_VALUES.keys()


def run_check(tmp_path, name, value, extra):
    (tmp_path / "a-file").write_text("not a directory")
    env = {key: val for key, val in os.environ.items() if key not in settings.ENVIRONMENT_VARIABLES}
    env.update(extra)
    env[name] = value.replace("{tmp}", str(tmp_path))
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_every_bad_value_stops_a_command_with_one_line_naming_the_setting(tmp_path):
    # One subprocess per case, run side by side: each is a whole Python start-up.
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: run_check(tmp_path, *case[:3]), CASES))
    failures = []
    for (name, value, _, says), result in zip(CASES, results, strict=True):
        lines = result.stderr.strip().splitlines()
        if result.returncode == 0 or len(lines) != 1 or not lines[0].startswith(f"configuration: {says}"):
            failures.append(f"{name}={value!r}: exit {result.returncode}, stderr {result.stderr.strip()[-500:]!r}")
    assert not failures, "\n".join(failures)


def test_hg_timeout_still_sets_the_vcs_timeout_with_a_deprecation_line_in_the_log():
    env = {key: val for key, val in os.environ.items() if key not in settings.ENVIRONMENT_VARIABLES}
    show = ["-c", "from django.conf import settings; print(settings.VCS_TIMEOUT)"]
    old = subprocess.run([sys.executable, "manage.py", "shell", *show], cwd=PROJECT, env={**env, "HG_TIMEOUT": "7"},
                         capture_output=True, text=True, timeout=60)
    assert old.returncode == 0 and old.stdout.split()[-1] == "7.0"
    assert "configuration: HG_TIMEOUT is deprecated: name it VCS_TIMEOUT" in old.stderr
    new = subprocess.run([sys.executable, "manage.py", "shell", *show], cwd=PROJECT,
                         env={**env, "HG_TIMEOUT": "7", "VCS_TIMEOUT": "8"}, capture_output=True, text=True, timeout=60)
    assert new.stdout.split()[-1] == "8.0"
    plain = subprocess.run([sys.executable, "manage.py", "shell", *show], cwd=PROJECT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert plain.stdout.split()[-1] == "900.0" and "deprecated" not in plain.stderr


# --- the parsers themselves (no subprocess) ---------------------------------------------


def test_an_empty_value_means_the_default():
    env = Environment({"HTTP_TIMEOUT": "  ", "DEBUG": ""})
    assert env.seconds("HTTP_TIMEOUT", 30.0) == 30.0 and env.boolean("DEBUG", False) is False
    assert env.names == ["HTTP_TIMEOUT", "DEBUG"]


def test_no_broker_configured_means_the_embedded_one():
    assert broker_url(Environment({})) == EMBEDDED_BROKER


def test_pulse_parts_build_an_amqps_url_whose_password_is_masked_in_logs():
    url = broker_url(Environment({"PULSE_USER": "elmo", "PULSE_PASSWORD": "s3cr:t@"}))
    assert url == "amqps://elmo:s3cr%3At%40@pulse.mozilla.org:5671/%2F"
    assert "s3cr" not in mask_password(url) and mask_password(url).startswith("amqps://elmo:***@pulse.mozilla.org")


def test_retry_delays_and_extra_sources_parse_to_plain_values():
    assert retry_delays(Environment({"PULSE_RETRY_DELAYS": "5, 60"})) == (5, 60)
    sources = extra_sources(Environment({"TASKCLUSTER_EXTRA_SOURCES": '[{"pulse_url": "amqp://c:p@h/", '
                                                                      '"root_url": "https://tc.example/"}]'}),
                            normalise_root_url, ("route.a",))
    assert sources == ({"pulse_url": "amqp://c:p@h/", "user": "c", "root_url": "https://tc.example",
                        "routes": ("route.a",)},)


def test_bad_value_raises_naming_the_setting():
    with pytest.raises(ConfigurationError, match="PULSE_PREFETCH must be at least 1, not 0"):
        Environment({"PULSE_PREFETCH": "0"}).integer("PULSE_PREFETCH", 20, minimum=1)
