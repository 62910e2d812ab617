from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "web"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("trees/", RedirectView.as_view(pattern_name="web:overview")),
    path("trees/<str:code>/", views.tree, name="tree"),
    path("trees/<str:code>/<str:locale>/", views.locale, name="locale"),
    path("pushes/", views.repositories, name="repositories"),
    # Repository names are paths on their server: `l10n-central/de`.
    path("pushes/<path:repository>/", views.pushes, name="pushes"),
    path("status/", views.status, name="status"),
    path("healthz", views.healthz, name="healthz"),
    path("api/", views.api_index, name="api"),
    path("api/trees/", views.overview_api, name="overview_api"),
    path("api/trees/<str:code>/", views.tree_api, name="tree_api"),
    path("api/trees/<str:code>/<str:locale>/", views.locale_api, name="locale_api"),
    path("api/pushes/", views.repositories_api, name="repositories_api"),
    path("api/pushes/<path:repository>/", views.pushes_api, name="pushes_api"),
    path("api/status/", views.status_api, name="status_api"),
]
