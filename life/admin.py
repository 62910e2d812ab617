"""Read-only admin for operators: what the worker stored, browsable and searchable."""

from django.contrib import admin
from django.db.models import F

from plumbing.urls import mask_secrets

from .models import Branch, Changeset, File, Forest, Locale, Push, Repository, SyncState, Tree


class ReadOnlyAdmin(admin.ModelAdmin):
    """The worker owns these rows; the admin only shows them."""

    @admin.display(description="URL", ordering="url")
    def masked_url(self, obj):
        return mask_secrets(obj.url)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Locale)
class LocaleAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "native")
    search_fields = ("code", "name")


@admin.register(Forest)
class ForestAdmin(ReadOnlyAdmin):
    list_display = ("name", "masked_url", "archived", "fork_of")
    exclude = ("url",)
    readonly_fields = ("masked_url",)
    list_filter = ("archived",)
    search_fields = ("name",)


@admin.register(Repository)
class RepositoryAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "masked_url", "branch", "forest", "locale", "archived", "fork_of")
    list_filter = ("kind", "archived", "forest")
    search_fields = ("name", "url")
    # changesets: thousands of them, browse changesets by repository instead; url: shown masked.
    exclude = ("changesets", "url")
    readonly_fields = ("masked_url",)


@admin.register(Branch)
class BranchAdmin(ReadOnlyAdmin):
    search_fields = ("name",)


@admin.register(File)
class FileAdmin(ReadOnlyAdmin):
    list_display = ("path",)
    search_fields = ("path",)


@admin.register(Changeset)
class ChangesetAdmin(ReadOnlyAdmin):
    list_display = ("short_revision", "user", "first_line", "branch", "placeholder")
    list_filter = ("placeholder", "branch")
    search_fields = ("revision", "user", "description")
    exclude = ("files", "parents")
    readonly_fields = ("revision", "user", "description", "branch", "placeholder")

    @admin.display(description="description")
    def first_line(self, changeset):
        return changeset.description.split("\n", 1)[0][:100]


@admin.register(Push)
class PushAdmin(ReadOnlyAdmin):
    list_display = ("repository", "push_id", "user", "push_date")
    list_filter = ("repository__forest",)
    search_fields = ("repository__name", "user")
    date_hierarchy = "push_date"
    list_select_related = ("repository",)
    exclude = ("changesets",)


@admin.register(Tree)
class TreeAdmin(ReadOnlyAdmin):
    list_display = ("code", "config_repository", "config_path", "l10n")
    search_fields = ("code", "config_path")


@admin.register(SyncState)
class SyncStateAdmin(ReadOnlyAdmin):
    """Failing repositories first, then the stalest."""

    list_display = ("repository", "last_synced", "stored_push_id", "upstream_push_id", "stored_revision", "failures",
                    "next_attempt", "last_error", "last_rejection")
    list_filter = ("failures",)
    search_fields = ("repository__name", "last_error", "last_rejection")
    list_select_related = ("repository",)
    ordering = ("-failures", F("last_synced").asc(nulls_first=True))
