"""Log formats: every line is one record, whatever the text from outside that it carries.

Routing keys, repository names and error details come from messages and
upstream answers. The text format escapes control characters in the
message, so a newline in a routing key cannot forge a log line; the JSON
format (``LOG_FORMAT=json``) escapes them by construction, and adds the
per-message fields as keys.
"""

import json
import logging
from datetime import datetime, timezone

from .text import printable
from .urls import mask_secrets


class TextFormatter(logging.Formatter):
    def formatMessage(self, record):
        record.message = printable(mask_secrets(record.message))
        return super().formatMessage(record)

    def formatException(self, exc_info):
        return mask_secrets(super().formatException(exc_info))


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            **getattr(record, "event", {}),
        }
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        return mask_secrets(json.dumps(entry, ensure_ascii=False))
