"""compare-locales results (DESIGN §5.4): one Run per comparison, and the Active one per tree and locale."""

from django.db import models

from life.models import Changeset, Locale, Tree

SUMMARY_COUNTS = (
    "errors",
    "warnings",
    "missing",
    "missing_w",
    "report",
    "obsolete",
    "changed",
    "changed_w",
    "unchanged",
    "unchanged_w",
    "keys",
)
# What a Run stores of a summary: the eleven counts, and older compare-locales' missingInFiles.
STORED_COUNTS = (*SUMMARY_COUNTS, "missingInFiles")


def completion(changed, unchanged, missing, missing_in_files):
    """Percent translated, as the dashboards have always shown it."""
    total = changed + unchanged + missing + missing_in_files
    return int(changed * 100 / total) if total else 0


class Run(models.Model):
    """One compare-locales comparison of a locale against a tree's reference."""

    tree = models.ForeignKey(Tree, on_delete=models.CASCADE, related_name="runs")
    locale = models.ForeignKey(Locale, on_delete=models.CASCADE, related_name="runs")

    errors = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    missing_w = models.PositiveIntegerField(default=0)
    report = models.PositiveIntegerField(default=0)
    obsolete = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    changed_w = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    unchanged_w = models.PositiveIntegerField(default=0)
    keys = models.PositiveIntegerField(default=0)
    # Strings missing because their whole file is missing (older compare-locales only).
    missingInFiles = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    completion = models.PositiveSmallIntegerField(default=0)

    revisions = models.ManyToManyField(Changeset, related_name="runs", blank=True)
    srctime = models.DateTimeField(db_index=True, help_text="when the compared sources were taken (task creation)")

    root_url = models.URLField(max_length=255, help_text="the Taskcluster deployment")
    task_id = models.CharField(max_length=22)
    run_id = models.PositiveSmallIntegerField()
    artifact = models.CharField(max_length=255, help_text="the detail artifact of this comparison")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task_id", "run_id", "tree", "locale"], name="unique_run_per_task_run")
        ]
        indexes = [models.Index(fields=["tree", "locale", "srctime"])]

    def __str__(self):
        return f"{self.tree.code} {self.locale.code} {self.completion}% ({self.task_id}/{self.run_id})"


class Active(models.Model):
    """The newest Run of a tree and locale: what the dashboards show."""

    tree = models.ForeignKey(Tree, on_delete=models.CASCADE, related_name="active_runs")
    locale = models.ForeignKey(Locale, on_delete=models.CASCADE, related_name="active_runs")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name_plural = "active runs"
        constraints = [models.UniqueConstraint(fields=["tree", "locale"], name="unique_active_per_tree_locale")]

    def __str__(self):
        return f"{self.tree.code} {self.locale.code}: {self.run_id}"
