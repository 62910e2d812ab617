"""The brokers the worker connects to, as plain data built from the settings (DESIGN §3).

The main broker carries hg.mozilla.org pushes and the completions of the
main Taskcluster deployment; each of TASKCLUSTER_EXTRA_SOURCES is a broker
(or vhost) of its own carrying another deployment's completions.
"""

from dataclasses import dataclass, replace

from plumbing.urls import mask_password


@dataclass(frozen=True)
class Broker:
    url: str
    user: str
    main: bool = True
    declare_exchanges: bool = False
    queue_expires_seconds: int = 7 * 24 * 3600
    prefetch: int = 20
    heartbeat: int = 60
    retry_delays: tuple[int, ...] = (10, 60, 300)
    max_retries: int = 48
    # Deliveries of one message left unsettled before the broker parks it (and the worker dead-letters it).
    delivery_limit: int = 20
    # Messages each worker queue holds at most: Pulse deletes a queue that grows past its limit (8,000).
    max_length: int = 4000
    # The Taskcluster deployment whose completions arrive here, and the routes bound for them.
    task_root_url: str = "https://firefox-ci-tc.services.mozilla.com"
    task_routes: tuple[str, ...] = ("route.project.l10n.elmo.v1",)

    @property
    def embedded(self):
        return self.url.startswith("memory://")

    @property
    def safe_url(self):
        return mask_password(self.url)

    def queue_name(self, suffix):
        return f"queue/{self.user}/{suffix}"

    @property
    def own_exchange(self):
        """Where retries wait and come back from; Pulse lets a user own exchange/<user>/…"""
        return f"exchange/{self.user}/worker"


def brokers(settings):
    """The main broker, then one per extra Taskcluster deployment."""
    main = Broker(
        url=settings.PULSE_URL,
        user=settings.PULSE_USER,
        declare_exchanges=settings.PULSE_DECLARE_EXCHANGES,
        queue_expires_seconds=settings.PULSE_QUEUE_EXPIRES,
        prefetch=settings.PULSE_PREFETCH,
        heartbeat=settings.PULSE_HEARTBEAT,
        retry_delays=tuple(settings.PULSE_RETRY_DELAYS),
        max_retries=settings.PULSE_MAX_RETRIES,
        delivery_limit=settings.PULSE_DELIVERY_LIMIT,
        max_length=settings.PULSE_QUEUE_MAX_LENGTH,
        task_root_url=settings.TASKCLUSTER_ROOT_URL,
        task_routes=tuple(settings.TASKCLUSTER_ROUTES),
    )
    extras = tuple(
        replace(main, url=extra["pulse_url"], user=extra["user"], main=False, task_root_url=extra["root_url"],
                task_routes=tuple(extra["routes"]))
        for extra in settings.TASKCLUSTER_EXTRA_SOURCES
    )
    return (main, *extras)
