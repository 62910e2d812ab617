"""The Pulse worker's own records: dead letters and the bindings it made."""

import hashlib
import math

from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone

from plumbing.text import ascii_only, storable
from plumbing.urls import mask_secrets

# Enough of a body to replay any legitimate message; larger ones are refused anyway.
MAX_STORED_BODY = 1024 * 1024
MAX_COUNT = 2**31 - 1  # what a PositiveIntegerField holds on every database
MAX_HEADER_DEPTH = 8


class DeadLetterQuerySet(models.QuerySet):
    def unresolved(self):
        return self.filter(resolved=False)


class DeadLetter(models.Model):
    """A message that failed permanently, kept so an operator can fix and replay it."""

    body = models.BinaryField()
    body_truncated = models.BooleanField(default=False)
    content_type = models.CharField(max_length=100, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    exchange = models.CharField(max_length=255)
    routing_key = models.CharField(max_length=255)
    source = models.CharField(max_length=255, blank=True, default="", help_text="the source that received it")
    error = models.TextField()
    created = models.DateTimeField(default=timezone.now, db_index=True)
    retries = models.PositiveIntegerField(default=0, help_text="transient failures before it was given up")
    replays = models.PositiveIntegerField(default=0)
    resolved = models.BooleanField(default=False, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The message's identity (``fingerprint``): one row per message, however often it dies. A worker
    # killed after storing the row and before its ack gets the message again, and a retry copy
    # published before such a kill lives on beside the redelivered original; both end here, once.
    fingerprint = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.exchange} {self.routing_key}: {self.error[:80]}"

    @classmethod
    def record(cls, delivery, error, source="", retries=0):
        """Store ``delivery`` as a dead letter, whatever it carries.

        Text is made storable on every database first. Should a database still
        refuse the row, a plainer one is stored: the raw body kept, every text
        field escaped to ASCII, the headers as text. A message must never be
        requeued because its dead letter could not be written.
        """
        body = bytes(delivery.body)
        fingerprint = cls.fingerprint_of(delivery)
        if (stored := cls._again(fingerprint, error, retries)) is not None:
            return stored
        row = {
            "fingerprint": fingerprint,
            "body": body[:MAX_STORED_BODY],
            "body_truncated": len(body) > MAX_STORED_BODY,
            "content_type": storable(str(delivery.content_type or ""))[:100],
            "headers": json_safe(delivery.headers or {}),
            "exchange": storable(str(delivery.exchange))[:255],
            "routing_key": storable(str(delivery.routing_key))[:255],
            "source": storable(str(source))[:255],
            "error": storable(mask_secrets(str(error))),
            "retries": min(max(int(retries), 0), MAX_COUNT),
        }
        try:
            with transaction.atomic():
                return cls.objects.create(**row)
        except (DataError, IntegrityError) as refused:
            if (stored := cls._again(fingerprint, error, retries)) is not None:
                return stored  # another worker stored the same message's row meanwhile
            plain = {name: ascii_only(value, 255) for name, value in row.items()
                     if name in ("content_type", "exchange", "routing_key", "source")}
            plain["content_type"] = plain["content_type"][:100]
            plain["headers"] = {"unstorable headers": ascii_only(repr(delivery.headers), 10_000)}
            plain["error"] = ascii_only(f"{error} (stored escaped: the database refused the row: {refused})")
            with transaction.atomic():
                return cls.objects.create(**{**row, **plain})


    @staticmethod
    def fingerprint_of(delivery):
        """What makes a message itself: where it was first published, its content type, encoding and body
        (a retry copy's delivery carries its original's exchange and routing key; it is published with
        the type and encoding below when the original had none), whatever the retry headers say."""
        digest = hashlib.sha256()
        for part in (str(delivery.exchange), str(delivery.routing_key), str(delivery.content_type or "application/json"),
                     str(delivery.content_encoding or "binary")):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(bytes(delivery.body))
        return digest.hexdigest()

    @classmethod
    def _again(cls, fingerprint, error, retries):
        """The row already stored for the message ``fingerprint``, or None. A row an operator resolved
        (replayed) is opened again: the message failed once more."""
        stored = cls.objects.filter(fingerprint=fingerprint).first()
        if stored is not None and stored.resolved:
            stored.resolved, stored.resolved_at = False, None
            stored.error = storable(mask_secrets(str(error)))
            stored.retries = min(max(int(retries), 0), MAX_COUNT)
            stored.save(update_fields=["resolved", "resolved_at", "error", "retries"])
        return stored


class QueueBinding(models.Model):
    """A binding this worker made, so that ones no longer configured can be removed."""

    queue = models.CharField(max_length=255)
    exchange = models.CharField(max_length=255)
    routing_key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["queue", "exchange", "routing_key"], name="unique_queue_binding")
        ]

    def __str__(self):
        return f"{self.queue} <- {self.exchange} [{self.routing_key}]"


def json_safe(value, depth=0):
    """``value`` (AMQP headers: tables, arrays, bytes, numbers of any size) as JSON every database stores."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)  # beyond a double, JSON readers disagree
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return storable(bytes(value).decode("utf-8", "backslashreplace"))
    if depth >= MAX_HEADER_DEPTH:
        return storable(repr(value)[:1000])
    if isinstance(value, dict):
        return {storable(str(key)): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, depth + 1) for item in value]
    return storable(str(value))
