from django.contrib import admin, messages

from life.admin import ReadOnlyAdmin

from .models import DeadLetter, QueueBinding
from .replay import replay


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("created", "exchange", "routing_key", "short_error", "retries", "replays", "resolved")
    list_filter = ("resolved", "exchange")
    search_fields = ("routing_key", "error")
    date_hierarchy = "created"
    readonly_fields = ("body_text", "content_type", "headers", "exchange", "routing_key", "error", "created",
                       "retries", "replays", "resolved", "resolved_at", "body_truncated")
    exclude = ("body",)
    actions = ["replay_selected"]

    @admin.display(description="error")
    def short_error(self, letter):
        return letter.error[:120]

    @admin.display(description="body")
    def body_text(self, letter):
        return bytes(letter.body)[:20000].decode("utf-8", "replace")

    @admin.action(description="Replay the selected dead letters (as replay-failed does)")
    def replay_selected(self, request, queryset):
        for letter in queryset.order_by("created"):
            outcome = replay(letter)
            level = messages.SUCCESS if letter.resolved else messages.WARNING
            self.message_user(request, f"#{letter.pk}: {outcome.status} {outcome.detail}", level)

    def has_change_permission(self, request, obj=None):
        # Actions need the change permission; the form itself stays read-only.
        return request.user.is_superuser


@admin.register(QueueBinding)
class QueueBindingAdmin(ReadOnlyAdmin):
    list_display = ("queue", "exchange", "routing_key")
