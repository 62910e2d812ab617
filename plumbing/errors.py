"""The ways work on a message can fail, which decide what happens to the message.

Each carries a reason meant for an operator's eyes (it ends up in a log line,
a dead letter or a repository's sync state).
"""


from .urls import mask_secrets


class _Reason(Exception):
    """A failure whose reason is shown to operators: made with every URL password masked."""

    def __init__(self, reason="", *args):
        super().__init__(mask_secrets(str(reason)), *args)


class TransientError(_Reason):
    """Worth retrying later: a server, the network or the database hiccuped.

    ``give_up_after``: seconds after the message was first tried past which
    retrying is pointless and it becomes a dead letter; None means it is
    retried up to PULSE_MAX_RETRIES times.
    """

    give_up_after = None


class Stalled(TransientError):
    """Upstream sent nothing for VCS_STALL_TIMEOUT seconds: a server that accepts and never answers.

    Given up long before VCS_TIMEOUT (the bound of a whole clone that keeps
    receiving); retried with back-off like any transient failure.
    """


class NotUpstreamYet(TransientError):
    """Upstream does not have what a message announces yet (a mirror lags behind the push).

    Retried for ``give_up_after`` seconds (UPSTREAM_LAG_LIMIT), without counting
    against the repository's sync state: the repository is fine, the message is early.
    """

    def __init__(self, message, give_up_after):
        super().__init__(message)
        self.give_up_after = give_up_after


class Deferred(TransientError):
    """Not tried now, and not a failure: the repository is backing off, or busy with earlier messages.

    The message waits in a delay queue without touching upstream; it does not
    count as a retry, nor against the repository.
    """

    repository_is_fine = True


class PermanentError(_Reason):
    """Retrying cannot help: the input is wrong. The message is dead-lettered."""
