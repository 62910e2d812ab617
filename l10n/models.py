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


TASKCLUSTER = "taskcluster"
COMPUTED = "computed"
ORIGINS = [(TASKCLUSTER, "published by a Taskcluster task"), (COMPUTED, "computed by this worker")]


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
    srctime = models.DateTimeField(
        db_index=True, help_text="when the compared sources were taken (task creation, or the newer compared commit)"
    )

    origin = models.CharField(max_length=12, choices=ORIGINS, default=TASKCLUSTER)
    # Taskcluster runs: where the comparison was published.
    root_url = models.URLField(max_length=255, blank=True, default="", help_text="the Taskcluster deployment")
    task_id = models.CharField(max_length=22, null=True, blank=True)
    run_id = models.PositiveSmallIntegerField(null=True, blank=True)
    artifact = models.CharField(max_length=255, blank=True, default="", help_text="the detail artifact")
    # Computed runs: what computed it, and the two revisions compared (also in `revisions`).
    computed_by = models.CharField(max_length=100, blank=True, default="", help_text="library and version")
    reference_revision = models.ForeignKey(
        Changeset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    locale_revision = models.ForeignKey(Changeset, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Computed runs: a digest of the numbers and the per-file detail; a check that finds the same one
    # adds no Run.
    digest = models.CharField(max_length=64, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Both hold for their own origin only: NULLs never collide in a unique constraint.
            models.UniqueConstraint(fields=["task_id", "run_id", "tree", "locale"], name="unique_run_per_task_run"),
            models.UniqueConstraint(
                fields=["tree", "locale", "reference_revision", "locale_revision"], name="unique_computed_run"
            ),
        ]
        indexes = [
            models.Index(fields=["tree", "locale", "srctime"]),
            # A tree's trend lines read its runs of the last days: without the tree first, the database
            # walks every tree's runs of those days (or, on a short history, all of them).
            models.Index(fields=["tree", "srctime"], name="l10n_run_tree_srctime"),
        ]

    def __str__(self):
        source = self.computed_by if self.origin == COMPUTED else f"{self.task_id}/{self.run_id}"
        return f"{self.tree.code} {self.locale.code} {self.completion}% ({source})"


class RunFile(models.Model):
    """What one file of a run lacks: kept for the active run, so a web head can list what to translate next."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="files")
    path = models.TextField(help_text="the reference path (without the locale folder)")
    missing = models.JSONField(default=list, help_text="message ids the locale lacks, in reference order")
    missing_file = models.BooleanField(default=False, help_text="the whole file is missing")
    error = models.TextField(blank=True, default="", help_text="why the locale's file does not parse")

    def __str__(self):
        return f"{self.run_id} {self.path}"


class Active(models.Model):
    """The newest Run of a tree and locale: what the dashboards show."""

    tree = models.ForeignKey(Tree, on_delete=models.CASCADE, related_name="active_runs")
    locale = models.ForeignKey(Locale, on_delete=models.CASCADE, related_name="active_runs")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    # Computed trees: the newest revisions checked, which may be newer than the run's when a push
    # changed no number (storage grows with changes in the results, not with pushes).
    checked_reference = models.ForeignKey(
        Changeset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_locale = models.ForeignKey(Changeset, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    checked = models.DateTimeField(null=True, blank=True, help_text="when it was last checked")

    class Meta:
        verbose_name_plural = "active runs"
        constraints = [models.UniqueConstraint(fields=["tree", "locale"], name="unique_active_per_tree_locale")]

    def __str__(self):
        return f"{self.tree.code} {self.locale.code}: {self.run_id}"


class ParsedFile(models.Model):
    """What one file content taught the worker, so it is parsed once by any worker, ever.

    ``key`` digests the parser's version, the file name's extension (formats are told by it) and the
    content's id in its clone (git blob id, Mercurial file node).
    """

    key = models.CharField(max_length=64, unique=True)
    ids = models.JSONField(default=list, help_text="the message ids it holds")
    error = models.TextField(blank=True, default="", help_text="why it does not parse (then it holds no ids)")
    unsupported = models.BooleanField(default=False, help_text="not a localization format moz.l10n knows")

    def __str__(self):
        return self.key
