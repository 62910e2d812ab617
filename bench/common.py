"""What every benchmark needs: Django on a scratch database, printing figures."""

import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
# Benchmarks measure the production setting: PostgreSQL unless told otherwise.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/l10n_bench")

import django  # noqa: E402

django.setup()

from django.db import connections  # noqa: E402


@contextlib.contextmanager
def scratch_database(using="default"):
    """A fresh, migrated database (Django's test database of the ``using`` alias: DATABASE_URL's for the
    default), dropped afterwards."""
    connection = connections[using]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection.vendor
    finally:
        if connection.vendor == "postgresql":
            # The worker's handler threads (in-process runs) keep connections of their own open.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        connection.creation.destroy_test_db(name, verbosity=0)


@contextlib.contextmanager
def hg_world(log_name):
    """(folder, simulated hg.mozilla.org, scratch vhost URL, database vendor) for a benchmark of pushes:
    the worker's settings point at them, and this process's log goes to ``log_name`` in the folder."""
    import logging
    import tempfile

    from django.conf import settings

    from settings.pulse import user_of
    from simulated.broker import scratch_vhost
    from simulated.hgmo import SimulatedHgmo

    with (
        tempfile.TemporaryDirectory() as tmp,
        SimulatedHgmo(Path(tmp) / "upstream") as hgmo,
        scratch_vhost("bench") as url,
        scratch_database() as vendor,
    ):
        logging.getLogger().handlers[:] = [logging.FileHandler(Path(tmp) / log_name)]
        settings.REPOSITORY_BASE = Path(tmp) / "clones"
        settings.PULSE_URL, settings.PULSE_USER = url, user_of(url)
        yield tmp, hgmo, url, vendor


def report(figures):
    """The figures, last, as `name: value` lines."""
    for name, value in figures.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
