"""The two ways ingestion can fail, which decide what happens to a message.

Both carry a reason meant for an operator's eyes (it ends up in a log line or
a dead letter).
"""


class TransientError(Exception):
    """Worth retrying later: a server, the network or the database hiccuped."""


class PermanentError(Exception):
    """Retrying cannot help: the input is wrong. The message is dead-lettered."""
