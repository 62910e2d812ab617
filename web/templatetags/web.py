"""Template helpers: upstream text shown inert, and query strings that keep the filters."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def untrusted(text, limit=300):
    """Escaped, isolated (a right-to-left override cannot turn the page around it) and cut to ``limit``."""
    text = "" if text is None else str(text)
    if limit and len(text) > int(limit):
        text = text[: int(limit)] + "…"
    return format_html("<bdi>{}</bdi>", text)


@register.filter
def first_line(text):
    return (text or "").split("\n", 1)[0]


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with ``changes`` applied (None removes a key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
