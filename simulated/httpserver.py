"""A threaded WSGI server on 127.0.0.1, in the background: what the simulated services run on."""

import argparse
import socketserver
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Restarting on the same port right away is how tests simulate an outage.
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def start_server(app, port, name):
    server = make_server("127.0.0.1", port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def stop_server(server):
    server.shutdown()
    server.server_close()


class SimulatedService:
    """A WSGI application (the subclass's ``__call__``) served in the background while started.

    Stopping refuses connections until the next ``start``, which may reuse
    the port: that is how tests simulate an outage.
    """

    thread_name = "simulated-service"

    def __init__(self):
        self.port = None
        self._server = None
        self._stopping = threading.Event()
        self.hang_seconds = 60.0  # how long a "hang" fault holds a request, unless the service stops first
        self.requests_seen = 0

    def start(self, port=0):
        if self._server is not None:
            raise RuntimeError("already serving")
        self._stopping = threading.Event()
        self._server = start_server(self, port, self.thread_name)
        self.port = self._server.server_port
        return self

    def stop(self):
        if self._server is not None:
            self._stopping.set()  # hanging requests give up now, not after their hang
            stop_server(self._server)
            self._server = None

    def __enter__(self):
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @staticmethod
    def redirect_elsewhere(base, environ, start_response):
        """Answer 302 to the same path and query under ``base`` (a URL ending in "/")."""
        query = environ.get("QUERY_STRING", "")
        location = base + environ.get("PATH_INFO", "/").lstrip("/") + (f"?{query}" if query else "")
        start_response("302 Found", [("Location", location), ("Content-Length", "0")])
        return [b""]

    def _base_url(self):
        if self.port is None:
            raise RuntimeError("not started")
        return f"http://127.0.0.1:{self.port}"


def serve_from_command_line(service_class, prog, description, root_help):
    """``python -m <prog> serve --root DIR [--port N]``: a simulated service until Ctrl-C."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--root", required=True, type=Path, help=root_help)
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    args = parser.parse_args()
    with service_class(args.root).start(args.port) as service:
        print(f"Serving {service.root} at {service.url} (Ctrl-C stops)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
