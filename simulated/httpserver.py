"""A threaded WSGI server on 127.0.0.1, in the background: what the simulated services run on."""

import socketserver
import threading
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
