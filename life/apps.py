from django.apps import AppConfig


class LifeConfig(AppConfig):
    name = "life"
    verbose_name = "Repositories and changesets"

    def ready(self):
        from . import checks  # noqa: F401
