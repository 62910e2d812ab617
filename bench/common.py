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

from django.db import connection  # noqa: E402


@contextlib.contextmanager
def scratch_database():
    """A fresh, migrated database (Django's test database of DATABASE_URL), dropped afterwards."""
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection.vendor
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


def report(figures):
    """The figures, last, as `name: value` lines."""
    for name, value in figures.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
