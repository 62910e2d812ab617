from django.contrib import admin

from life.admin import ReadOnlyAdmin

from .models import Active, Run


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("tree", "locale", "completion", "missing", "errors", "srctime", "task_id", "run_id", "root_url")
    list_filter = ("tree", "root_url")
    search_fields = ("locale__code", "task_id")
    list_select_related = ("tree", "locale")
    date_hierarchy = "srctime"
    exclude = ("revisions",)


@admin.register(Active)
class ActiveAdmin(ReadOnlyAdmin):
    list_display = ("tree", "locale", "completion", "srctime")
    list_filter = ("tree",)
    search_fields = ("locale__code",)
    list_select_related = ("tree", "locale", "run")

    @admin.display(ordering="run__completion")
    def completion(self, active):
        return active.run.completion

    @admin.display(ordering="run__srctime")
    def srctime(self, active):
        return active.run.srctime
