"""``python -m web.serve [gunicorn options]``: the web head, gunicorn serving ``settings.wsgi``.

Checks the configuration first, so a web head without its SECRET_KEY or
ALLOWED_HOSTS stops with one line instead of a worker boot loop; then gunicorn
replaces this process (it receives the container's signals itself).
"""

import os
import shutil
import sys


def main(argv):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018 (reading the settings stops at a bad value, with its one line)
    if settings.WEB_CONFIGURATION_ERRORS:
        sys.exit(f"configuration: {settings.WEB_CONFIGURATION_ERRORS[0]}")
    defaults = ["--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("-")}
    options = [item for flag, value in zip(defaults[::2], defaults[1::2], strict=True) if flag not in given
               for item in (flag, value)]
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    os.execv(gunicorn, [gunicorn, *options, *argv, "settings.wsgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])
