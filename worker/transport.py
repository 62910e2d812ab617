"""The AMQP transport the worker connects with: kombu's py-amqp transport, minus decompression.

kombu decompresses a body whose message carries a ``compression`` header
while it builds the Message, before any callback runs: a 2 KB message can
expand to gigabytes in memory. Deliveries here keep the raw bytes they
arrived with; the consumer refuses compressed ones (a dead letter that keeps
those bytes). The embedded broker (``memory://``) is the demo's and uses
kombu's own transport.
"""

from urllib.parse import urlsplit

from kombu import Connection
from kombu.message import Message as KombuMessage
from kombu.transport import pyamqp


class RawBodyMessage(pyamqp.Message):
    def __init__(self, msg, channel=None, **kwargs):
        properties = msg.properties
        # The base class decompresses when its headers name a compression; it gets none, and the
        # real headers are put back afterwards for the consumer to see (and refuse).
        KombuMessage.__init__(
            self,
            body=msg.body,
            channel=channel,
            delivery_tag=msg.delivery_tag,
            content_type=properties.get("content_type"),
            content_encoding=properties.get("content_encoding"),
            delivery_info=msg.delivery_info,
            properties=properties,
            headers={},
            **kwargs,
        )
        self.headers = properties.get("application_headers") or {}


class _Channel(pyamqp.Channel):
    Message = RawBodyMessage


class _Connection(pyamqp.Connection):
    Channel = _Channel


class Transport(pyamqp.Transport):
    Connection = _Connection


class SSLTransport(pyamqp.SSLTransport):
    Connection = _Connection


def connection(url, **options):
    """A kombu Connection to ``url``; amqp:// and amqps:// deliver raw, undecompressed bodies."""
    scheme = urlsplit(url).scheme
    if scheme == "amqps":
        options.setdefault("transport", SSLTransport)
    elif scheme == "amqp":
        options.setdefault("transport", Transport)
    return Connection(url, **options)
