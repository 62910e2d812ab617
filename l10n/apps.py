from django.apps import AppConfig


class L10nConfig(AppConfig):
    name = "l10n"
    verbose_name = "compare-locales results"

    def ready(self):
        # Registers the task-completed handler with the worker's dispatcher.
        from . import handler  # noqa: F401
