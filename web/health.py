"""``python -m web.health [PORT]``: the container's health check of a web head: does /healthz answer 200?

Asks the local gunicorn under a host name the web head answers to (the first of
ALLOWED_HOSTS), since Django refuses any other.
"""

import http.client
import os
import sys


def host_to_ask(allowed_hosts):
    host = next((host for host in allowed_hosts if host != "*"), "localhost")
    return "www" + host if host.startswith(".") else host


def main(argv):
    port = int(argv[0]) if argv else 8000  # web.serve's default
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.conf import settings

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz", headers={"Host": host_to_ask(settings.ALLOWED_HOSTS)})
        response = connection.getresponse()
        body = response.read(200).decode("utf-8", "replace").strip()
    except OSError as error:
        print(f"unhealthy: no answer from the web head ({error})")
        return 1
    if response.status != 200:
        print(f"unhealthy: /healthz answered {response.status}: {body}")
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
