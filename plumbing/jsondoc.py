"""Decoding and checking untrusted JSON documents: bounded in size and in nesting, one clear error."""

import json

import jsonschema

from .errors import PermanentError

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
JSON_CONTENT_TYPES = ("application/json", "", None)


def _depth(value, limit):
    """Raise when JSON nests deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise PermanentError(f"JSON nests deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def decode_json(body, content_type="application/json", limit=MAX_BODY_BYTES):
    """The JSON value of a body, refusing what is not plainly a JSON document."""
    if content_type not in JSON_CONTENT_TYPES:
        raise PermanentError(f"content type {content_type!r} is not application/json")
    if len(body) > limit:
        raise PermanentError(f"body of {len(body)} bytes is larger than the {limit}-byte limit")
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise PermanentError(f"body is not JSON: {str(error)[:120]}") from None
    except RecursionError:
        raise PermanentError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:  # else it cannot nest that deep
        _depth(value, MAX_JSON_DEPTH)
    return value


def validate_schema(value, schema, what):
    """Raise a PermanentError naming where ``value`` first breaks the JSON Schema ``schema``."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise PermanentError(f"{what} is invalid at {where}: {error.message[:200]}")
