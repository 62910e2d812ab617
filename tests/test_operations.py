"""What an operator relies on: metrics, JSON logs, the health check, the Dockerfile."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from life.models import Push, Repository
from simulated import pulse
from simulated.harness import PROJECT, WorkerProcess, declare_queues, wait_until
from tests.test_worker import publish, push_message


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric(text, name, **labels):
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    series = f"{name}{{{selector}}}" if labels else name
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.django_db(transaction=True)
def test_metrics_json_logs_and_heartbeat_of_a_running_worker(hgmo, broker_url, worker_env, tmp_path, monkeypatch):
    port = free_port()
    heartbeat = tmp_path / "heartbeat"
    monkeypatch.setenv("METRICS_PORT", str(port))
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("HEARTBEAT_FILE", str(heartbeat))
    hgmo.create_repo("l10n-central/de")
    repo = Repository.objects.create(name="l10n-central/de", url=hgmo.repo_url("l10n-central/de"))
    hgmo.commit_and_push(repo.name, {"a": b"1"})
    declare_queues()
    publish(broker_url, repo.name, push_message(hgmo, repo.name, 1))
    publish(broker_url, "mozilla-central", pulse.changegroup("mozilla-central", "https://hg.example/", [3]))
    publish(broker_url, repo.name, b"not json")

    worker = WorkerProcess("--idle-exit", "60", log_path=tmp_path / "worker.log")
    # The push for a repository not tracked has no line of its own at INFO: it is summed up.
    wait_until(lambda: worker.output().count('"outcome": ') == 2)

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    hg = "exchange/hgpushes/v2"
    assert metric(text, "l10n_worker_messages_total", exchange=hg, outcome="stored") == 1
    assert metric(text, "l10n_worker_messages_total", exchange=hg, outcome="skipped") == 1
    assert metric(text, "l10n_worker_messages_total", exchange=hg, outcome="dead-lettered") == 1
    assert metric(text, "l10n_worker_dead_letters_total", exchange=hg) == 1
    assert metric(text, "l10n_worker_vcs_seconds_count", kind="hg") == 1
    assert metric(text, "l10n_worker_last_success_timestamp_seconds") > 0

    health = subprocess.run([sys.executable, "-m", "worker.health"], cwd=PROJECT, capture_output=True, text=True,
                            env={**os.environ, "HEARTBEAT_FILE": str(heartbeat)})
    assert health.returncode == 0, health.stdout
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0

    events = [json.loads(line) for line in worker.output().splitlines()]  # every line is JSON
    stored = next(e for e in events if e.get("outcome") == "stored")
    assert stored["exchange"] == hg and stored["routing_key"] == "l10n-central/de"
    assert stored["type"] == "changegroup.1" and stored["subject"] == "l10n-central/de"
    assert stored["duration"] >= 0 and "1 pushes" in stored["detail"]
    assert [e["skipped_unread"] for e in events if "skipped_unread" in e] == [1]
    assert Push.objects.count() == 1


def test_health_check_fails_without_a_fresh_heartbeat(tmp_path):
    stale = tmp_path / "heartbeat"
    stale.touch()
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    env = {**os.environ, "HEARTBEAT_FILE": str(stale), "HEALTHCHECK_MAX_AGE": "60"}
    result = subprocess.run([sys.executable, "-m", "worker.health"], cwd=PROJECT, capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "unhealthy" in result.stdout
    env["HEARTBEAT_FILE"] = str(tmp_path / "missing")
    result = subprocess.run([sys.executable, "-m", "worker.health"], cwd=PROJECT, capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "no heartbeat" in result.stdout


def test_dockerfile_runs_the_pinned_worker_as_a_non_root_user_with_a_health_check():
    lines = [line.strip() for line in (PROJECT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0].startswith("FROM python:3.11-slim")
    user = [line for line in instructions if line.startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
    assert any(line.startswith("VOLUME") and "/srv/repos" in line for line in instructions)
    assert any("REPOSITORY_BASE=/srv/repos" in line for line in instructions)
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK"))
    assert healthcheck.endswith('CMD ["healthcheck"]')
    assert "python -m worker.health" in (PROJECT / "docker" / "healthcheck").read_text()
    assert instructions[-1] == 'CMD ["python", "manage.py", "consume-pulse"]'
    # The image installs exactly what pyproject.toml pins, nothing floating.
    assert any("pip install" in line and "--no-deps" not in line for line in instructions)
    assert any("COPY pyproject.toml" in line for line in instructions)
    assert not any(re.search(r"pip install [^.-]*[a-z]+\s*$", line) for line in instructions)


def test_the_image_runs_a_web_head_with_one_command_and_collects_its_static_files_at_build_time():
    text = (PROJECT / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "COPY web ./web" in instructions
    assert any(line.startswith("COPY docker/entrypoint docker/healthcheck /usr/local/bin/") for line in instructions)
    assert 'ENTRYPOINT ["entrypoint"]' in instructions
    collect = instructions.index("RUN python manage.py collectstatic --noinput --verbosity 0")
    assert collect > instructions.index("COPY web ./web") and collect < instructions.index("USER l10n")
    assert any(line.startswith("EXPOSE") and "8000" in line.split() for line in instructions)
    # `docker run IMAGE web` is gunicorn (web.serve checks the configuration, then execs it); anything else runs as is.
    entrypoint = (PROJECT / "docker" / "entrypoint").read_text()
    assert 'if [ "$1" = "web" ]' in entrypoint and "exec python -m web.serve \"$@\"" in entrypoint
    ran = subprocess.run(["sh", str(PROJECT / "docker" / "entrypoint"), "echo", "worker", "command"],
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0 and ran.stdout == "worker command\n"
    healthcheck = (PROJECT / "docker" / "healthcheck").read_text()
    assert "/tmp/l10n-web-head" in healthcheck and "exec python -m web.health" in healthcheck
    assert "/tmp/l10n-web-head" in entrypoint
    for name in ("entrypoint", "healthcheck"):
        assert os.access(PROJECT / "docker" / name, os.X_OK), name


DEBIAN_RELEASES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}


def test_dockerfile_installs_a_pinned_git_of_its_own_debian_release():
    """git reads the GitHub repositories; like every dependency, its version is pinned (--diff-merges needs 2.31),
    and the pin exists only in the Debian release the base image names (a bare `-slim` tag moves to the next one)."""
    text = (PROJECT / "Dockerfile").read_text()
    match = re.search(r"apt-get install [^\n]*\bgit=1:(\d+)\.(\d+)\.\d+-\S*\+deb(\d+)u\d+", text)
    assert match and (int(match.group(1)), int(match.group(2))) >= (2, 31)
    base = re.search(r"^FROM (\S+)", text, re.MULTILINE).group(1)
    assert base.endswith(f"-slim-{DEBIAN_RELEASES[match.group(3)]}"), base


def test_consume_pulse_refuses_a_database_without_its_tables(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "PULSE_URL": "memory://"}
    result = subprocess.run([sys.executable, "manage.py", "consume-pulse", "--idle-exit", "1"], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert re.fullmatch(r"CommandError: the database lacks \d+ migrations: run ./manage.py migrate first",
                        result.stderr.strip()), result.stderr


COMMANDS_THAT_IMPORT = [["consume-pulse", "--idle-exit", "1"], ["track", "https://127.0.0.1:9/x", "--kind", "git"],
                        ["reprocess-repo", "x"], ["backfill"]]


def test_every_command_that_imports_leaves_the_startups_objects_out_of_the_collectors_walks(tmp_path):
    # Each command runs to its end, here an error (a database without tables), then the process says how many
    # objects its start left frozen; a full collection would otherwise walk every one of them again.
    run_then_count = ("import gc, sys, django; django.setup(); from django.core.management import call_command\n"
                      "try:\n    call_command(*sys.argv[1:])\nexcept BaseException:\n    pass\n"
                      "print(gc.get_freeze_count())")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "PULSE_URL": "memory://",
           "REPOSITORY_BASE": str(tmp_path / "clones"), "DJANGO_SETTINGS_MODULE": "settings"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda command: subprocess.run(
            [sys.executable, "-c", run_then_count, *command], cwd=PROJECT, env=env, capture_output=True, text=True,
            timeout=60), COMMANDS_THAT_IMPORT))
    frozen = {command[0]: int(result.stdout.split()[-1]) for command, result in zip(COMMANDS_THAT_IMPORT, results,
                                                                                   strict=True)}
    assert all(count > 20_000 for count in frozen.values()), frozen
