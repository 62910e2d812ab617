from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "worker"
    verbose_name = "Pulse worker"

    def ready(self):
        # Registers the hg.mozilla.org handler with the dispatcher.
        from . import hgpush  # noqa: F401
