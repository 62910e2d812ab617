"""Typed readers of environment variables: each names the variable in its error.

An empty value counts as unset (``FOO=`` in a compose file means "use the
default"). Every reader records the name it read, so the README's table of
settings can be checked against what the project really reads.
"""

import json
import math
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from plumbing.urls import normalise_root_url

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
_HOST = re.compile(r"(?:\*|\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")


class ConfigurationError(Exception):
    """A setting that cannot work; the message names it and says what it must be."""


class Environment:
    def __init__(self, environ):
        self.environ = environ
        self.names = []

    def raw(self, name):
        """The stripped value, or None when unset or empty."""
        if name not in self.names:
            self.names.append(name)
        value = self.environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def text(self, name, default=None, pattern=None, meaning=None):
        value = self.raw(name)
        if value is None:
            return default
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ConfigurationError(f"{name} must be {meaning}, not {value!r}")
        return value

    def boolean(self, name, default):
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise ConfigurationError(f"{name} must be true or false, not {value!r}")

    def integer(self, name, default, minimum=0, maximum=None):
        value = self.raw(name)
        if value is None:
            return default
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", value):
            raise ConfigurationError(f"{name} must be a whole number, not {value!r}")
        return self._within(name, int(value), minimum, maximum)

    def seconds(self, name, default, minimum=0.0, maximum=None):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
        return self._within(name, number, minimum, maximum)

    def choice(self, name, default, choices):
        value = self.raw(name)
        if value is None:
            return default
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {value!r}")

    def items(self, name, default):
        """A comma-separated list (a set but empty list is an error, not the default)."""
        value = self.raw(name)
        if value is None:
            return tuple(default)
        items = tuple(item.strip() for item in value.split(",") if item.strip())
        if not items:
            raise ConfigurationError(f"{name} is set but names nothing")
        return items

    def hosts(self, name, default):
        hosts = self.items(name, default)
        for host in hosts:
            if not _HOST.match(host):
                raise ConfigurationError(f"{name} must list host names, not {host!r}")
        return list(hosts)

    def json(self, name, default):
        value = self.raw(name)
        if value is None:
            return default
        try:
            return json.loads(value)
        except ValueError:
            raise ConfigurationError(f"{name} is not valid JSON") from None

    def directory(self, name, default):
        """A path that is a directory or does not exist yet (it is created on first use)."""
        value = self.raw(name)
        path = Path(value) if value is not None else Path(default)
        if path.exists() and not path.is_dir():
            raise ConfigurationError(f"{name} must be a directory, not the file {str(path)!r}")
        return path

    def file(self, name, default):
        """A path where a file is (or will be) written."""
        value = self.raw(name)
        path = Path(value) if value is not None else Path(default)
        if path.is_dir():
            raise ConfigurationError(f"{name} must be a file, not the directory {str(path)!r}")
        return path

    def executable(self, name, default):
        """A program: a path, or a name on PATH; None when unset and ``default`` is None."""
        value = self.raw(name)
        if value is None:
            return default
        found = shutil.which(value)
        if found is None:
            raise ConfigurationError(f"{name} must name an executable program, not {value!r}")
        return found

    def url(self, name, default, schemes):
        value = self.raw(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ConfigurationError(f"{name} must be a {' or '.join(schemes)} URL, not {value!r}")
        return value

    def root_url(self, name, default):
        try:
            return normalise_root_url(self.raw(name) or default)
        except ValueError as error:
            raise ConfigurationError(f"{name} {error}") from None

    @staticmethod
    def _within(name, number, minimum, maximum):
        if minimum is not None and number < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum:g}, not {number:g}")
        if maximum is not None and number > maximum:
            raise ConfigurationError(f"{name} must be at most {maximum:g}, not {number:g}")
        return number
