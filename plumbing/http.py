"""HTTP to hg.mozilla.org and Taskcluster: bounded in time, in size, and in where it may lead.

- Time: ``HTTP_TIMEOUT`` bounds a whole ``get_bytes`` call (connecting,
  every redirect hop and retry, the headers and the body), not each socket
  read. urllib3's timeouts apply to each socket operation, so a server
  that sends a byte a second never trips them (urllib3 documents this, and
  reading in chunks does not help: one read is many receives). So each call
  has a deadline, and a timer shuts down, at the deadline, every connection
  the call uses: whatever read is blocked then (TLS handshake, headers,
  body) returns at once. Name resolution is the one step it cannot cut short.
- Stalls: a server that accepts and then sends nothing is given up after
  ``VCS_STALL_TIMEOUT`` (each connect and each read may wait that long), as
  ``Stalled``, and not tried again within the call: waiting again would cost
  as much. A trickle still meets the deadline.
- Size: answers larger than the caller's limit are refused.
- Redirects are followed here, one hop at a time, and only where the
  caller's policy (``plumbing.urls``) allows, checked before the hop is
  requested; anything else is a permanent failure naming where it pointed.

Network trouble, 5xx answers and the deadline are transient (retried
later); any other unexpected answer is permanent for the message that
caused it.
"""

import heapq
import itertools
import json
import socket
import threading
import time
from urllib.parse import urljoin

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from .errors import PermanentError, Stalled, TransientError
from .text import printable
from .urls import mask_password

MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5


class _DeadlinePassed(Exception):
    """Raised inside urllib3 when a new connection or request would start after the deadline.

    Not an OSError or urllib3 error on purpose: urllib3 would retry those.
    """


class _Watchdog:
    """One background thread that expires every deadline when its time comes.

    Cheaper than a timer thread per request: a request only adds its deadline
    to a heap. Deadlines whose request has finished stay there until their
    time, and then expire without effect.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._heap = []  # (time, sequence, deadline)
        self._sequence = itertools.count()
        self._thread = None

    def add(self, deadline):
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline.at, next(self._sequence), deadline))
            if self._heap[0][2] is deadline:
                self._condition.notify()

    def _run(self):
        with self._condition:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._condition.wait(self._heap[0][0] - now if self._heap else None)


class Deadline:
    """A point in time after which the sockets a request uses are shut down.

    The watchdog shuts down a duplicate of each socket, owned here: shutting
    down acts on the connection, not on the descriptor, so the request's own
    blocked read ends, and the watchdog never touches a descriptor that
    urllib3 has closed and the system has given to someone else.
    """

    _current = threading.local()
    _watchdog = _Watchdog()

    def __init__(self, seconds):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False  # the deadline passed in use: what was read after this may be cut short
        self.stall_bound = False  # the socket timeouts of the current hop are VCS_STALL_TIMEOUT, not the deadline
        self._lock = threading.Lock()
        self._sockets = []
        self._closed = False

    @classmethod
    def current(cls):
        return getattr(cls._current, "deadline", None)

    def __enter__(self):
        self._outer = self.current()
        self._watchdog.add(self)
        self._current.deadline = self
        return self

    def __exit__(self, *exc_info):
        self._current.deadline = self._outer
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self):
        return self.at - time.monotonic()

    def check(self):
        if self.expired or self.remaining() <= 0:
            raise _DeadlinePassed()

    def watch(self, sock):
        """Shut ``sock``'s connection down at the deadline (at once if it has passed)."""
        try:
            duplicate = sock.dup()
        except OSError:  # already closed: nothing to watch
            return
        with self._lock:
            if self.expired:
                _shut_down(duplicate)
            if self.expired or self._closed:
                duplicate.close()
            else:
                self._sockets.append(duplicate)

    def expire(self):
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _WatchedConnection:
    """A urllib3 connection that puts its socket under the current request's deadline."""

    _watched_by = None

    def _new_conn(self):
        deadline = Deadline.current()
        if deadline is not None:
            deadline.check()
        sock = super()._new_conn()
        if deadline is not None:
            self._watched_by = deadline
            deadline.watch(sock)
        return sock

    def request(self, *args, **kwargs):
        # A connection kept alive from an earlier call connects no more: watch it here.
        deadline = Deadline.current()
        if deadline is not None and self.sock is not None and self._watched_by is not deadline:
            deadline.check()
            self._watched_by = deadline
            deadline.watch(self.sock)
        return super().request(*args, **kwargs)


class _HTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_WATCHED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections (direct or through an HTTP proxy) that obey the deadline."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:  # not SOCKS
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


class _Retry(Retry):
    """urllib3's Retry, except that a connect or read that timed out (a stall) is not tried again."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if _is_socket_timeout(error):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def http_session():
    """A requests session that retries idempotent requests a little, then gives up.

    A Retry-After header is not obeyed: a server must not make us wait past the deadline.
    """
    session = requests.Session()
    retry = _Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=("GET",),
                  respect_retry_after_header=False)
    adapter = _DeadlineAdapter(max_retries=retry, pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _prepared_url(url, params=None):
    """``url`` exactly as requests will send it (encoded, IDNA-mapped), so policies judge what is fetched."""
    return requests.Request("GET", url, params=params).prepare().url


def _shown(url):
    """A URL from outside as an error message may show it: bounded, escaped, any password masked."""
    try:
        url = mask_password(url)
    except ValueError:
        pass
    return printable(url, 200)


def _redirect_target(session, response, url, redirects):
    """The URL ``response`` redirects to, if ``redirects`` allows it; else a PermanentError."""
    location = session.get_redirect_target(response)
    try:
        target = _prepared_url(urljoin(url, location))
    except (requests.RequestException, ValueError):
        raise PermanentError(f"GET {url}: redirect to {_shown(location)} refused: it is not a valid URL") from None
    reason = "redirects are not followed here" if redirects is None else redirects.refusal(target)
    if reason is not None:
        raise PermanentError(f"GET {url}: redirect to {_shown(target)} refused: {reason}")
    return target


def _fetch(session, url, params, limit, permanent_statuses, redirects, deadline):
    try:
        url = _prepared_url(url, params)
    except (requests.RequestException, ValueError):
        raise PermanentError(f"GET {printable(url, 200)}: not a valid URL") from None
    for _ in range(MAX_REDIRECTS + 1):
        deadline.check()
        remaining = deadline.remaining()
        deadline.stall_bound = settings.VCS_STALL_TIMEOUT < remaining
        timeout = min(remaining, settings.VCS_STALL_TIMEOUT)
        response = session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=False)
        with response:
            if response.is_redirect:
                url = _redirect_target(session, response, url, redirects)
                continue
            if response.status_code >= 500:
                raise TransientError(f"GET {url}: HTTP {response.status_code}")
            if response.status_code != 200:
                reason = (permanent_statuses or {}).get(response.status_code, f"HTTP {response.status_code}")
                raise PermanentError(f"GET {url}: {reason}")
            return url, response.raw.read(limit + 1, decode_content=True)
    raise PermanentError(f"GET {url}: more than {MAX_REDIRECTS} redirects")


def get_bytes(session, url, params=None, limit=MAX_ANSWER_BYTES, permanent_statuses=None, redirects=None):
    """GET a body of at most ``limit`` bytes within HTTP_TIMEOUT, all redirects and retries included.

    ``redirects`` is a policy of ``plumbing.urls`` (``SameOrigin``,
    ``PublicHttp``); None follows no redirect. ``permanent_statuses`` maps
    HTTP statuses to the reason a caller wants in its PermanentError (e.g.
    410: "expired").
    """
    with Deadline(settings.HTTP_TIMEOUT) as deadline:
        try:
            url, body = _fetch(session, url, params, limit, permanent_statuses, redirects, deadline)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, _DeadlinePassed) as error:
            timed_out = _timed_out(error)
            if timed_out and deadline.stall_bound:
                raise Stalled(f"GET {url}: stalled, nothing received for {settings.VCS_STALL_TIMEOUT:g} s "
                              "(VCS_STALL_TIMEOUT)") from None
            # A socket timeout that was the deadline's may come a moment before the watchdog marks it expired.
            if deadline.expired or timed_out or isinstance(error, _DeadlinePassed):
                raise TransientError(_too_long(url, deadline)) from None
            if isinstance(error, requests.exceptions.RetryError):
                raise TransientError(f"GET {url}: server kept failing ({error})") from None
            raise TransientError(f"GET {url}: {type(error).__name__}") from None
    if deadline.expired:  # the body may have been cut short
        raise TransientError(_too_long(url, deadline))
    if len(body) > limit:
        raise PermanentError(f"GET {url}: answer larger than {limit} bytes")
    return body


def _timed_out(error):
    """Whether ``error`` is a socket timeout (connecting or reading), however requests or urllib3 wrapped it."""
    if isinstance(error, requests.exceptions.ConnectionError) and error.args:
        error = getattr(error.args[0], "reason", error.args[0])  # requests' wrapping of urllib3's MaxRetryError
    return isinstance(error, requests.exceptions.Timeout) or _is_socket_timeout(error)


def _is_socket_timeout(error):
    # urllib3's NewConnectionError (refused, unreachable) is a ConnectTimeoutError by inheritance only.
    return (isinstance(error, (urllib3.exceptions.TimeoutError, TimeoutError))
            and not isinstance(error, urllib3.exceptions.NewConnectionError))


def _too_long(url, deadline):
    return f"GET {url}: took longer than HTTP_TIMEOUT ({deadline.seconds:g} s)"


def get_json(session, url, params=None, redirects=None):
    body = get_bytes(session, url, params, redirects=redirects)
    try:
        return json.loads(body)
    except ValueError:
        raise PermanentError(f"GET {url}: answer is not JSON") from None
