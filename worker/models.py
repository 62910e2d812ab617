"""The Pulse worker's own records: dead letters and the bindings it made."""

from django.db import models
from django.utils import timezone

from plumbing.text import storable

# Enough of a body to replay any legitimate message; larger ones are refused anyway.
MAX_STORED_BODY = 1024 * 1024


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
        body = bytes(delivery.body)
        return cls.objects.create(
            body=body[:MAX_STORED_BODY],
            body_truncated=len(body) > MAX_STORED_BODY,
            content_type=storable(delivery.content_type or "")[:100],
            headers=_json_safe(delivery.headers),
            exchange=storable(delivery.exchange)[:255],
            routing_key=storable(delivery.routing_key)[:255],
            source=storable(source)[:255],
            error=storable(str(error)),
            retries=retries,
        )


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


def _json_safe(headers):
    def plain(value):
        if isinstance(value, str):
            return storable(value)
        if isinstance(value, (int, float, bool, type(None))):
            return value
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return storable(str(value))

    return {storable(str(key)): plain(value) for key, value in (headers or {}).items()}
