"""Django settings, parsed once from the environment (see ``project.py`` and DESIGN §3).

A setting that cannot work stops whatever is starting (a management
command, the health check, a web head) with one line naming the variable,
instead of a traceback or a silently wrong default.
"""

import sys

from .environment import ConfigurationError

try:
    from .project import *  # noqa: F403 (Django reads the upper-case names of this package)
except ConfigurationError as error:
    sys.exit(f"configuration: {error}")
