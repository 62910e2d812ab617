"""The Pulse worker's own records: dead letters and the bindings it made."""

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
        row = {
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
            plain = {name: ascii_only(value, 255) for name, value in row.items()
                     if name in ("content_type", "exchange", "routing_key", "source")}
            plain["content_type"] = plain["content_type"][:100]
            plain["headers"] = {"unstorable headers": ascii_only(repr(delivery.headers), 10_000)}
            plain["error"] = ascii_only(f"{error} (stored escaped: the database refused the row: {refused})")
            with transaction.atomic():
                return cls.objects.create(**{**row, **plain})


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
