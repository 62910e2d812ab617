"""Repositories are independent: a bounded pool of handler threads, one job per repository at a time.

Why this design (DESIGN §6, issue 19). A repository whose server accepts a
connection and never answers held the whole worker for ``VCS_TIMEOUT`` per
message: the consumer handled one delivery at a time. Three things together
make one slow upstream cost the others nothing:

- **Lanes.** Work that touches upstream runs in a pool of ``WORKER_THREADS``
  threads. Each job names its lane (one repository, or the Taskcluster source
  as a whole); a lane runs at most one job at a time and keeps the rest of
  its messages, in order, behind it, so per-repository order and the
  per-repository locks life takes are kept as a single thread kept them. A
  hanging repository occupies one thread and its own lane; the other threads
  go on with every other repository.
- **A lane's backlog is bounded** (``backlog_limit``, a quarter of the
  prefetch): past it, a message for that repository goes to a delay queue
  without touching upstream and without counting as a retry, so a hanging
  repository can never hold the whole prefetch window unacked.
- **A slow job does not shrink the pool.** A job running longer than
  ``SLOW_JOB_SECONDS`` (far longer than a push takes; a server that hangs or
  trickles holds its job for VCS_STALL_TIMEOUT, HTTP_TIMEOUT or more) stops
  counting against ``WORKER_THREADS``: one more thread is started, so the
  other repositories keep ``WORKER_THREADS`` threads. At most as many extra
  threads as ``WORKER_THREADS``; a surplus thread ends once idle.
- **Back-off is honoured for messages too**: a handler asked to work on a
  repository that is backing off (its SyncState says so) defers the message
  to the delay queues without fetching anything (``life.sync.backing_off``).

The AMQP channel stays on the consumer's thread: kombu's and py-amqp's
channels are not thread-safe, so the pool threads never ack or publish.
They return an Outcome; the consumer thread, between polls of its
connection (which also services the broker's heartbeats), settles each
finished job by its own delivery tag (``settling``). Threads are the right
unit here because the work is waiting on hg, git, HTTP and the database,
not computing; every thread has its own Django database connection, and
life already locks per repository, since several worker processes have
always handled messages side by side.
"""

import collections
import queue
import threading
import time

from django.db import close_old_connections, connections

# A job running longer than this no longer counts against the pool: a thread is added for the others.
SLOW_JOB_SECONDS = 5.0
# How often an idle thread checks whether it is surplus (more threads than the pool needs now).
IDLE_CHECK_SECONDS = 1.0
_CLOSE = object()  # in place of a lane: the thread that takes it ends


class Lanes:
    """A pool of ``threads`` threads running jobs, at most one per lane at a time, in each lane's order.

    With 0 threads each job runs at once on the caller's thread (a test whose data lives in its
    own uncommitted transaction, which no other thread's connection can see).
    """

    def __init__(self, threads, backlog_limit, extra_threads=None):
        self.threads = threads
        # Threads that may stand in for slow jobs (default: as many as ``threads``).
        self.extra_threads = threads if extra_threads is None else extra_threads
        self.backlog_limit = max(1, backlog_limit)
        self.waiting = collections.OrderedDict()  # lane -> deque of jobs not started, in arrival order
        self.running = set()  # lanes with a job in a thread
        self.ready = queue.Queue()  # lanes whose next job may start
        self.finished = queue.Queue()  # (token, outcome or None, exception or None)
        self.lock = threading.Lock()
        self.workers = set()  # the threads alive
        self.job_started = {}  # thread -> when its current job started (monotonic)
        self.in_flight = 0  # jobs submitted and not yet collected

    def full(self, lane):
        """Whether ``lane`` already holds as many jobs as it may (one running, ``backlog_limit`` waiting)."""
        with self.lock:
            return lane in self.running and len(self.waiting.get(lane, ())) >= self.backlog_limit

    def submit(self, lane, token, job):
        """Run ``job()`` in a thread once ``lane`` is free; its result comes back from ``collect`` with ``token``."""
        self.in_flight += 1
        if not self.threads:
            try:
                self.finished.put((token, job(), None))
            except Exception as error:  # noqa: BLE001 - as a thread would hand it over
                self.finished.put((token, None, error))
            return
        self._start_threads()
        with self.lock:
            self.waiting.setdefault(lane, collections.deque()).append((token, job))
            if lane not in self.running:
                self.running.add(lane)
                self.ready.put(lane)

    def collect(self):
        """The finished jobs since the last call: [(token, outcome, exception)], never waiting. (Called
        often: it also starts a thread for each job that turned slow.)"""
        if self.threads:
            self._start_threads()
        done = []
        while True:
            try:
                done.append(self.finished.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done

    def wait(self, timeout):
        """Wait up to ``timeout`` seconds for a job to finish (it stays to be collected)."""
        try:
            item = self.finished.get(timeout=timeout)
        except queue.Empty:
            return
        self.finished.put(item)

    def close(self, timeout=5.0):
        """End the threads, each closing its database connections; called once no job is in flight (a
        worker that stops in a process that goes on, as a test's, would leave them open)."""
        with self.lock:
            workers = list(self.workers)
        for _ in workers:
            self.ready.put(_CLOSE)
        for thread in workers:
            thread.join(timeout)

    def _wanted(self, now):
        """Threads the pool needs now: ``threads``, plus one for each slow job (at most ``extra_threads`` more)."""
        slow = sum(1 for started in self.job_started.values() if now - started >= SLOW_JOB_SECONDS)
        return self.threads + min(slow, self.extra_threads)

    def _start_threads(self):
        with self.lock:
            missing = self._wanted(time.monotonic()) - len(self.workers)
            for _ in range(missing):
                thread = threading.Thread(target=self._work, name="handler", daemon=True)
                self.workers.add(thread)
                thread.start()

    def _work(self):
        me = threading.current_thread()
        while True:
            try:
                lane = self.ready.get(timeout=IDLE_CHECK_SECONDS)
            except queue.Empty:
                with self.lock:
                    if len(self.workers) > self._wanted(time.monotonic()):
                        self.workers.discard(me)  # surplus: the slow job it stood in for has ended
                        break
                continue
            if lane is _CLOSE:
                with self.lock:
                    self.workers.discard(me)
                break
            with self.lock:
                token, job = self.waiting[lane].popleft()
                self.job_started[me] = time.monotonic()
            try:
                outcome, error = job(), None
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which decides
                outcome, error = None, exc
            finally:
                close_old_connections()  # a connection a failure left broken is not reused
            with self.lock:
                del self.job_started[me]
            self.finished.put((token, outcome, error))
            with self.lock:
                if self.waiting[lane]:
                    self.ready.put(lane)
                else:
                    del self.waiting[lane]
                    self.running.discard(lane)
        connections.close_all()  # this thread's own database connections
