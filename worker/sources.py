"""Every exchange the worker consumes, in one table built from the configuration.

A source is one upstream exchange feeding one of the worker's queues on a
broker: the routing keys bound, how a delivery is parsed (pure: bytes in,
typed message or PermanentError out) and the handler that does the work.
Each source's parsing and handling live side by side in a module of their
own (``hgmo.py``, ``taskcluster.py``, ``github.py``); adding a kind of
message is adding a module and a row here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import github, hgmo, taskcluster


@dataclass(frozen=True)
class Source:
    name: str  # unique in the configuration; dead letters record it, replays find the source by it
    queue: str  # the source's queue on its broker is queue/<user>/<queue>
    exchange: str
    routing_keys: tuple[str, ...]
    parse: Callable
    handle: Callable
    # message -> the lane its work runs in (worker.lanes), or None: settled at once on the consumer's thread.
    lane: Callable
    # routing key -> whether every delivery so routed is skipped, its body unread (None: always read).
    skips_unread: Callable | None = None


def sources(broker, known_repositories):
    """The sources ``broker`` carries; handlers share the worker's ``known_repositories`` cache."""
    table = []
    if broker.main:
        table.append(Source("hgmo", "hgmo", hgmo.EXCHANGE, ("#",), hgmo.parse,
                            handler := hgmo.HgPushHandler(known_repositories), handler.lane, handler.skips_unread))
    table.append(Source(
        "tasks" if broker.main else f"tasks:{broker.task_root_url}",
        "tasks",
        taskcluster.EXCHANGE,
        broker.task_routes,
        partial(taskcluster.parse, root_url=broker.task_root_url),
        taskcluster.handle,
        _tasks_lane,  # one lane: completions are stored in the order they arrive, as before
    ))
    if broker.main:
        # GitHub pushes in both formats, one handler (and one cache of known repositories) for both.
        # A routing key word cannot match part of "<owner>/<repo>/<event>": bind everything.
        pushes = github.GitHubPushHandler(github.KnownGitHubRepositories(known_repositories.ttl))
        table.append(Source("github-webhooks", "github-webhooks", github.WEBHOOKS_EXCHANGE, ("#",),
                            github.parse_webhook, pushes, pushes.lane))
        table.append(Source("taskcluster-github", "taskcluster-github", github.TASKCLUSTER_GITHUB_EXCHANGE,
                            ("primary.#",), github.parse_taskcluster_github, pushes, pushes.lane))
    return tuple(table)


def _tasks_lane(message):
    return "tasks"


def find(name, exchange, brokers, known_repositories):
    """The source called ``name``; for letters recorded before sources had names, the main broker's
    source for ``exchange``. None when the configuration no longer has it."""
    table = [source for broker in brokers for source in sources(broker, known_repositories)]
    if name:
        return next((source for source in table if source.name == name), None)
    return next((source for source in sources(brokers[0], known_repositories) if source.exchange == exchange), None)
