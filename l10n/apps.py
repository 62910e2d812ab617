from django.apps import AppConfig


class L10nConfig(AppConfig):
    name = "l10n"
    verbose_name = "compare-locales results"

    def ready(self):
        from life.signals import pushes_stored

        from . import hooks

        pushes_stored.connect(hooks.on_pushes_stored, dispatch_uid="l10n.hooks.on_pushes_stored")
