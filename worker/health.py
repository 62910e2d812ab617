"""The container's health check: is the consumer loop alive?

    python -m worker.health   # exit 0 when the heartbeat is fresh, 1 otherwise

The consumer touches HEARTBEAT_FILE every few seconds while it waits for
messages and after each one. A message may legitimately take up to
VCS_TIMEOUT (a clone), so HEALTHCHECK_MAX_AGE must be larger than that.
"""

import os
import sys
import time
from pathlib import Path


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.conf import settings

    heartbeat = Path(settings.HEARTBEAT_FILE)
    try:
        age = time.time() - heartbeat.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {heartbeat}")
        return 1
    if age > settings.HEALTHCHECK_MAX_AGE:
        print(f"unhealthy: last heartbeat {age:.0f}s ago (limit {settings.HEALTHCHECK_MAX_AGE:.0f}s)")
        return 1
    print(f"healthy: last heartbeat {age:.0f}s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
