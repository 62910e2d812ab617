"""HTTP with limits (DESIGN §5.3, §7): HTTP_TIMEOUT bounds a whole request, and redirects lead only
where the configuration allows. Real servers on 127.0.0.1: dripping ones written here, the simulated
hg.mozilla.org and Taskcluster Queue; nothing is mocked."""

import re
import socket
import socketserver
import threading
import time

import pytest

from l10n.taskcluster import QueueClient
from life.hg.pushlog import PushlogClient
from plumbing.errors import PermanentError, TransientError
from plumbing.http import MAX_REDIRECTS, get_bytes, http_session
from plumbing.urls import PublicHttp, SameOrigin, is_internal_host
from simulated.hgmo import SimulatedHgmo
from simulated.taskcluster import SimulatedQueue

# --- HTTP_TIMEOUT bounds the whole request ------------------------------------------------------


class RawServer(socketserver.ThreadingTCPServer):
    """A threaded server on 127.0.0.1 writing its answers byte by byte: ``answer(sock, number, stopping)``
    answers the ``number``th HTTP request of the server (or, with ``http=False``, whatever the client
    sent first) and says whether to keep the connection for another."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer, http=True):
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self.answer = answer
        self.http = http
        self.requests = 0
        self.stopping = threading.Event()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _RawHandler(socketserver.BaseRequestHandler):
    def handle(self):
        received = b""
        try:
            if not self.server.http:
                self.request.recv(4096)
                self.server.answer(self.request, 1, self.server.stopping)
                return
            while True:
                while b"\r\n\r\n" not in received:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    received += chunk
                received = received.split(b"\r\n\r\n", 1)[1]
                self.server.requests += 1
                if not self.server.answer(self.request, self.server.requests, self.server.stopping):
                    return
        except OSError:  # the client gave up: what the dripping tests want
            return


def drip(sock, data, stopping, every=1.0):
    for byte in data:
        if stopping.wait(every):
            return
        sock.sendall(bytes([byte]))


def drip_body(sock, number, stopping):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n")
    drip(sock, b"x" * 60, stopping)


def drip_body_until_close(sock, number, stopping):
    sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    drip(sock, b"x" * 60, stopping)


def drip_headers(sock, number, stopping):
    drip(sock, b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 60, stopping)


def drip_tls_handshake(sock, number, stopping):
    """After the client's hello, the header of a 16 kB handshake record, then its bytes one by one."""
    sock.sendall(b"\x16\x03\x03\x40\x00")
    drip(sock, bytes(16384), stopping)


def quick_then_drip(sock, number, stopping):
    if number == 1:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True  # keep the connection: the next request reuses it
    drip_body(sock, number, stopping)


def steady(sock, number, stopping):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    drip(sock, b"hello", stopping, every=0.05)
    return True


@pytest.mark.parametrize("answer", [drip_body, drip_body_until_close, drip_headers],
                         ids=["body", "body until close", "headers"])
def test_a_dripping_server_is_cut_off_at_http_timeout(answer, settings):
    settings.HTTP_TIMEOUT = 2
    with RawServer(answer) as server:
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"took longer than HTTP_TIMEOUT \(2 s\)"):
            get_bytes(http_session(), server.url)
        # The bound under test: the whole request, not each read, within HTTP_TIMEOUT (and a second of slack).
        assert time.monotonic() - started < settings.HTTP_TIMEOUT + 1


def test_a_dripping_tls_handshake_is_cut_off_at_http_timeout(settings):
    settings.HTTP_TIMEOUT = 2
    with RawServer(drip_tls_handshake, http=False) as server:
        started = time.monotonic()
        with pytest.raises(TransientError, match="took longer than HTTP_TIMEOUT"):
            get_bytes(http_session(), server.url.replace("http:", "https:"))
        assert time.monotonic() - started < settings.HTTP_TIMEOUT + 1


def test_a_kept_alive_connection_is_cut_off_too(settings):
    settings.HTTP_TIMEOUT = 2
    session = http_session()
    with RawServer(quick_then_drip) as server:
        assert get_bytes(session, server.url) == b"ok"
        started = time.monotonic()
        with pytest.raises(TransientError, match="took longer than HTTP_TIMEOUT"):
            get_bytes(session, server.url)
        assert time.monotonic() - started < settings.HTTP_TIMEOUT + 1
    assert server.requests == 2  # the second request went over the first one's connection, once


def test_a_slow_answer_within_the_timeout_arrives_whole(settings):
    settings.HTTP_TIMEOUT = 2
    session = http_session()
    with RawServer(steady) as server:
        assert [get_bytes(session, server.url) for _ in range(3)] == [b"hello"] * 3


def test_a_silent_server_is_a_transient_failure(settings):
    settings.HTTP_TIMEOUT = 1
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (the backlog) and never answers
        with pytest.raises(TransientError, match="took longer than HTTP_TIMEOUT"):
            get_bytes(http_session(), f"http://127.0.0.1:{listener.getsockname()[1]}/")


# --- json-pushes redirects: only within the repository's origin --------------------------------


@pytest.fixture
def bystander(tmp_path):
    """Another server, which a refused redirect must never reach."""
    with SimulatedHgmo(tmp_path / "elsewhere") as server:
        server.create_repo("l10n-central/de")
        yield server


@pytest.fixture
def moved(hgmo):
    """l10n-central/de, with one push, also reachable as old/de, which redirects to it."""
    hgmo.create_repo("l10n-central/de")
    hgmo.commit_and_push("l10n-central/de", {"a.ftl": b"a = A\n"})
    hgmo.redirect("old/de", hgmo.repo_url("l10n-central/de"))
    return hgmo.repo_url("old/de")


def test_json_pushes_follows_a_redirect_within_the_repository_origin(hgmo, moved):
    page = PushlogClient().fetch(moved, 0, 1)

    assert [push.push_id for push in page.pushes] == [1]
    assert page.pushes[0].changesets == tuple(hgmo.pushlog("l10n-central/de")[0]["changesets"])


REFUSED_JSON_PUSHES = [
    ("another host", lambda other: other.repo_url("l10n-central/de"), "it leaves http://127.0.0.1:"),
    ("file", lambda other: "file:///etc/passwd/", "it is not http(s)"),
    ("cloud metadata", lambda other: "http://169.254.169.254/latest/meta-data/", "it leaves"),
    ("ipv6 loopback", lambda other: f"http://[::1]:{other.port}/", "it leaves"),
    ("userinfo trick", lambda other: f"http://127.0.0.1@127.0.0.1:{other.port}/", "it carries credentials"),
    ("credentials on the same host", lambda other: "http://user:secret@HGMO/l10n-central/de/",
     "it carries credentials"),
    ("other scheme", lambda other: "ftp://HGMO/l10n-central/de/", "it is not http(s)"),
]


@pytest.mark.parametrize("name, location, reason", REFUSED_JSON_PUSHES, ids=[c[0] for c in REFUSED_JSON_PUSHES])
def test_json_pushes_redirect_elsewhere_is_refused_unfetched(name, location, reason, hgmo, bystander):
    hgmo.create_repo("l10n-central/de")
    hgmo.redirect("l10n-central/de", location(bystander).replace("HGMO", f"127.0.0.1:{hgmo.port}"))

    with pytest.raises(PermanentError, match=re.escape("refused: " + reason)) as refused:
        PushlogClient().fetch(hgmo.repo_url("l10n-central/de"), 0, 1)

    assert str(refused.value).startswith(f"GET {hgmo.repo_url('l10n-central/de')}json-pushes?")
    assert "secret" not in str(refused.value)
    assert bystander.requests_seen == 0


def test_json_pushes_redirect_loop_is_refused(hgmo):
    hgmo.redirect("l10n-central/de", hgmo.repo_url("l10n-central/de"))

    with pytest.raises(PermanentError, match=f"more than {MAX_REDIRECTS} redirects"):
        PushlogClient().fetch(hgmo.repo_url("l10n-central/de"), 0, 1)

    assert hgmo.requests_seen == MAX_REDIRECTS + 1


def test_no_redirect_is_followed_without_a_policy(hgmo, moved):
    with pytest.raises(PermanentError, match="refused: redirects are not followed here"):
        get_bytes(http_session(), moved + "json-pushes")


# --- the Queue's artifact redirect: http(s) to public hosts ---------------------------------------


@pytest.fixture
def queue():
    with SimulatedQueue() as server:
        yield server


@pytest.fixture
def artifact(queue):
    task_id = queue.add_task()
    queue.add_artifact(task_id, 0, "public/elmo.json", b'{"version": "1.0"}')
    return task_id


def storage_client(queue):
    """A Queue client that reaches the storage host s3.example through the simulated queue (its proxy)."""
    session = http_session()
    session.proxies = {"http://s3.example": queue.root_url}
    return QueueClient(queue.root_url, session=session)


@pytest.mark.parametrize("storage", ["http://s3.example", "http://s3.example/hops/2"])
def test_artifact_redirect_to_storage_on_another_host_is_followed(storage, queue, artifact):
    queue.storage_url = storage

    assert storage_client(queue).artifact(artifact, 0, "public/elmo.json") == b'{"version": "1.0"}'


REFUSED_STORAGE = [
    ("file", "file:///etc", "it is not http(s)"),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data", "it is an internal address"),
    ("loopback elsewhere", "http://127.0.0.1:OTHER", "it is an internal address"),
    ("loopback by number", "http://2130706433:OTHER", "it is an internal address"),
    ("ipv6 loopback", "http://[::1]:OTHER", "it is an internal address"),
    ("ipv4 in ipv6", "http://[::ffff:127.0.0.1]:OTHER", "it is an internal address"),
    ("private network", "http://10.1.2.3", "it is an internal address"),
    ("localhost", "http://localhost:OTHER", "it is an internal address"),
    ("userinfo trick", "http://s3.example@127.0.0.1:OTHER", "it carries credentials"),
]


@pytest.mark.parametrize("name, storage, reason", REFUSED_STORAGE, ids=[c[0] for c in REFUSED_STORAGE])
def test_artifact_redirect_to_an_internal_address_is_refused_unfetched(name, storage, reason, queue, artifact):
    with SimulatedQueue() as other:
        queue.storage_url = storage.replace("OTHER", str(other.port))

        with pytest.raises(PermanentError, match=re.escape("refused: " + reason)):
            storage_client(queue).artifact(artifact, 0, "public/elmo.json")

        assert other.requests_seen == 0


def test_artifact_redirect_chain_is_bounded(queue, artifact):
    queue.storage_url = "http://s3.example/hops/10"

    with pytest.raises(PermanentError, match=f"more than {MAX_REDIRECTS} redirects"):
        storage_client(queue).artifact(artifact, 0, "public/elmo.json")


@pytest.mark.parametrize("storage", ["http://s3.example", "ROOT"], ids=["from public storage", "from the queue"])
def test_a_storage_hop_to_an_internal_address_is_refused(storage, queue, artifact):
    """Each hop is checked: storage redirecting onwards to the metadata service is refused."""
    queue.storage_url = storage.replace("ROOT", queue.root_url) + "/hops/0/http://169.254.169.254"

    with pytest.raises(PermanentError, match="redirect to http://169.254.169.254/storage/.* refused"):
        storage_client(queue).artifact(artifact, 0, "public/elmo.json")


# --- the policies alone -----------------------------------------------------------------------------


@pytest.mark.parametrize("url, refused", [
    ("https://hg.mozilla.org/l10n-central/fr/json-pushes", None),
    ("https://HG.Mozilla.org:443/x", None),
    ("http://hg.mozilla.org/x", "it leaves https://hg.mozilla.org"),
    ("https://hg.mozilla.org:8443/x", "it leaves"),
    ("https://hg.mozilla.org.evil.example/x", "it leaves"),
    ("https://hg.mozilla.org@evil.example/x", "it carries credentials"),
    ("https://evil.example\\@hg.mozilla.org/x", "it carries credentials"),
    ("file:///etc/passwd", "it is not http(s)"),
    ("javascript:alert(1)", "it is not http(s)"),
    ("https://[::1/x", "it is not a valid URL"),
    ("https:///x", "it is not a valid URL"),
])
def test_same_origin(url, refused):
    reason = SameOrigin("https://hg.mozilla.org/l10n-central/de/").refusal(url)
    assert (reason is None) == (refused is None) and (refused is None or refused in reason)


@pytest.mark.parametrize("host", [
    "localhost", "LOCALHOST.", "db.localhost", "127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1",
    "0.0.0.0", "0", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
    "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
])
def test_internal_hosts(host):
    assert is_internal_host(host)
    assert PublicHttp("https://tc.example").refusal(f"http://[{host}]/" if ":" in host else f"http://{host}/")


@pytest.mark.parametrize("url", [
    "https://s3.amazonaws.com/bucket/key?X-Amz-Signature=abc", "http://storage.googleapis.com/x",
    "https://8.8.8.8/x", "https://[2606:4700::1111]/x", "https://tc.example/api/queue/v1/x",
])
def test_public_http_allows_public_storage(url):
    assert PublicHttp("https://tc.example").refusal(url) is None


def test_public_http_allows_anywhere_on_the_queue_origin():
    assert PublicHttp("http://127.0.0.1:8080").refusal("http://127.0.0.1:8080/storage/x") is None
    assert PublicHttp("http://127.0.0.1:8080").refusal("http://127.0.0.1:8081/storage/x")
