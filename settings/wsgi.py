"""The web head's WSGI application (gunicorn serves ``settings.wsgi``).

Outside DEBUG a web head needs its own SECRET_KEY and ALLOWED_HOSTS: without
them it stops at start with one line, like any other bad setting.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from django.conf import settings  # noqa: E402

if settings.WEB_CONFIGURATION_ERRORS:
    sys.exit(f"configuration: {settings.WEB_CONFIGURATION_ERRORS[0]}")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
