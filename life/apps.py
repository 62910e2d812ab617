import logging

from django.apps import AppConfig
from django.conf import settings

log = logging.getLogger("settings")


class LifeConfig(AppConfig):
    name = "life"
    verbose_name = "Repositories and changesets"

    def ready(self):
        from . import checks  # noqa: F401

        for deprecation in getattr(settings, "DEPRECATIONS", ()):
            log.warning("configuration: %s", deprecation)
