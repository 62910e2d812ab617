"""The pages and their JSON twins: the same data (queries.py), drawn as HTML or dumped as JSON.

Every response can be revalidated: an ETag of its content and a Last-Modified
of the newest data it shows, so a polling dashboard gets a 304.
"""

import json
from functools import wraps

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.middleware.http import ConditionalGetMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.decorators import decorator_from_middleware
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from . import charts, queries

conditional = decorator_from_middleware(ConditionalGetMiddleware)


def dump(data):
    """JSON that no browser can take for markup: non-ASCII and ``<>&`` as escapes.

    Compact: with an indent the json module encodes in Python, several times slower on long lists.
    """
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finish(response, modified):
    if modified is not None:
        response["Last-Modified"] = http_date(modified.timestamp())
    patch_cache_control(response, no_cache=True)
    return response


def twin(build, template, decorate=None):
    """An HTML view and a JSON view of ``build(request, **kwargs) -> (data, modified)``."""

    def answer(request, as_json, kwargs):
        try:
            data, modified = build(request, **kwargs)
        except queries.BadRequest as error:
            if as_json:
                return HttpResponseBadRequest(dump({"error": str(error)}), content_type="application/json")
            return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
        except Http404 as error:
            if as_json:
                return HttpResponse(dump({"error": str(error)}), status=404, content_type="application/json")
            raise
        if as_json:
            response = HttpResponse(dump(data), content_type="application/json")
        else:
            context = dict(data)
            if decorate:
                decorate(request, context)
            response = render(request, template, context)
        return _finish(response, modified)

    @require_safe
    @conditional
    @wraps(build)
    def html(request, **kwargs):
        return answer(request, False, kwargs)

    @require_safe
    @conditional
    @wraps(build)
    def api(request, **kwargs):
        return answer(request, True, kwargs)

    return html, api


# --- what each page shows ------------------------------------------------------------------------


def _overview(request):
    return queries.overview()


def _decorate_overview(request, context):
    for tree in context["trees"]:
        tree["bar"] = charts.completion_bar(tree["median_completion"] or 0)


def _tree(request, code):
    sort = request.GET.get("sort", "locale")
    return queries.tree_page(code, sort=sort, descending=request.GET.get("order") == "desc")


def _decorate_tree(request, context):
    since, now = context["trend_since"], timezone.now()
    for row in context["locales"]:
        row["bar"] = charts.completion_bar(row["completion"])
        row["trend_svg"] = charts.trend_line([(p["srctime"], p["completion"]) for p in row["trend"]], since, now)
    context["columns"] = [_sort_column(request, context, key, label) for key, label in TREE_COLUMNS]


TREE_COLUMNS = (("locale", "locale"), ("completion", "completion"), ("translated", "translated"),
                ("missing", "missing"), ("errors", "errors"), ("total", "total"), ("changed", "last changed"))


def _sort_column(request, context, key, label):
    """A column header that sorts by it (a plain link: no JavaScript); again, the other way round."""
    sorted_here = context["sort"] == key
    if sorted_here:
        order = "asc" if context["order"] == "desc" else "desc"
    else:
        order = "asc" if key == "locale" else "desc"
    params = request.GET.copy()
    params["sort"], params["order"] = key, order
    state = ("ascending" if context["order"] == "asc" else "descending") if sorted_here else None
    return {"key": key, "label": label, "href": "?" + params.urlencode(), "state": state,
            "numeric": key in ("translated", "missing", "errors", "total")}


def _locale(request, code, locale):
    return queries.locale_page(code, locale, cursor=request.GET.get("cursor") or None)


def _decorate_locale(request, context):
    runs = [(run["srctime"], run["completion"],
             f"{run['srctime']:%Y-%m-%d %H:%M} UTC: {run['completion']}% ({run['translated']} of {run['total']}, "
             f"{run['missing']} missing)") for run in context["runs"]]
    pushes = [(push["push_date"], f"{push['repository']} push {push['push_id']} by {push['user']}")
              for push in context["pushes"]]
    context["chart"] = charts.history_chart(runs, pushes)
    context["paged"] = bool(request.GET.get("cursor"))
    context["bar"] = charts.completion_bar(context["active"]["completion"], width=200, height=14)


def _repositories(request):
    return queries.repositories()


def _pushes(request, repository):
    return queries.pushes_page(repository, cursor=request.GET.get("cursor") or None,
                               path=request.GET.get("path", "").strip(), user=request.GET.get("user", "").strip())


def _status(request):
    return queries.status_page()


overview, overview_api = twin(_overview, "web/overview.html", _decorate_overview)
tree, tree_api = twin(_tree, "web/tree.html", _decorate_tree)
locale, locale_api = twin(_locale, "web/locale.html", _decorate_locale)
repositories, repositories_api = twin(_repositories, "web/repositories.html")
pushes, pushes_api = twin(_pushes, "web/pushes.html")
status, status_api = twin(_status, "web/status.html")


@require_safe
def api_index(request):
    """The endpoints, and the overview (``/``'s twin)."""
    endpoints = {
        "overview": reverse("web:overview_api"),
        "tree": reverse("web:tree_api", args=["CODE"]).replace("CODE", "{code}"),
        "locale": reverse("web:locale_api", args=["CODE", "LOCALE"]).replace("CODE", "{code}")
        .replace("LOCALE", "{locale}"),
        "repositories": reverse("web:repositories_api"),
        "pushes": reverse("web:pushes_api", args=["REPO"]).replace("REPO", "{repository}")
        + "?path={path}&user={user}&cursor={cursor}",
        "status": reverse("web:status_api"),
    }
    data, modified = queries.overview()
    return _finish(HttpResponse(dump({"endpoints": endpoints, **data}), content_type="application/json"), modified)


@require_safe
def healthz(request):
    """200 when this web head can reach its database, 503 otherwise (for a load balancer)."""
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 (any failure means unhealthy)
        return HttpResponse(f"database unreachable: {type(error).__name__}\n", status=503,
                            content_type="text/plain; charset=utf-8")
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
