from django.apps import AppConfig


class L10nConfig(AppConfig):
    name = "l10n"
    verbose_name = "compare-locales results"
