"""Configuring the worker from a test: the same settings for an in-process worker and a subprocess."""

import importlib.util

# Settings a test may not change by environment: the test database and logging are pytest-django's.
_KEPT = {"DATABASES", "LOGGING", "ENVIRONMENT_VARIABLES"}


def _parsed_settings():
    """The settings the project's settings module makes of the current environment."""
    spec = importlib.util.find_spec("settings.project")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: value for name, value in vars(module).items() if name.isupper() and name not in _KEPT}


def configure(monkeypatch, django_settings, **environment):
    """Set environment variables for worker subprocesses, and the settings they parse to for this one.

    The project's own settings module parses the environment before and after the change, and the
    settings that changed are applied here: an in-process worker and a ``consume-pulse`` subprocess
    see the same configuration.
    """
    before = _parsed_settings()
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    for name, value in _parsed_settings().items():
        if value != before.get(name):
            setattr(django_settings, name, value)
