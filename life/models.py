"""What lives outside: locales, repositories and their history (DESIGN §5.4).

The web heads read these tables: names and meanings are an interface.

The link tables (a repository's, a push's changesets; a changeset's files and parents) hold a row per
commit and per file it touched: importing a history writes hundreds of thousands of them, and the
database's check of each row's two foreign keys took a third of the import's time. They are written
only by bulk storing, from ids read or inserted in the same transaction, and changesets are never
deleted, so they carry no database constraint (``db_constraint=False``); deleting through Django
still takes the links along. Each is indexed by its unique pair, which serves lookups by its first
column too, and by its second column: no third index for every row to pay for (``_link_to``).
"""

import hashlib

from django.db import models

NULL_REVISION = "0" * 40


class Locale(models.Model):
    code = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=100, blank=True, default="")
    native = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code


class ArchivableQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived=False)


class Forest(models.Model):
    """A set of l10n repositories named ``<forest name>/<locale code>``."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    archived = models.BooleanField(default=False)
    fork_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")

    objects = ArchivableQuerySet.as_manager()

    def __str__(self):
        return self.name

    @staticmethod
    def name_over(repository_name):
        """The name of the forest a repository ``<forest name>/<locale code>`` would belong to."""
        return repository_name.rpartition("/")[0]

    def repository_url(self, code):
        """The URL of this forest's repository for locale ``code``."""
        return self.url.rstrip("/") + "/" + code + "/"


class Repository(models.Model):
    """A Mercurial repository, or a git repository of which one branch is tracked.

    ``name`` is its path on its server (``l10n-central/de``, ``mozilla-l10n/firefox-l10n``).
    """

    HG = "hg"
    GIT = "git"
    KINDS = [(HG, "Mercurial"), (GIT, "git")]

    name = models.CharField(max_length=200, unique=True)
    url = models.URLField(max_length=500)
    kind = models.CharField(max_length=3, choices=KINDS, default=HG)
    # git: the branch whose pushes are recorded (Mercurial repositories record every push).
    branch = models.CharField(max_length=255, blank=True, default="", help_text="git: the tracked branch")
    forest = models.ForeignKey(Forest, null=True, blank=True, on_delete=models.SET_NULL, related_name="repositories")
    locale = models.ForeignKey(Locale, null=True, blank=True, on_delete=models.SET_NULL, related_name="repositories")
    archived = models.BooleanField(default=False)
    # A fork shares the local clone of the repository it forks.
    fork_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    changesets = models.ManyToManyField("Changeset", related_name="repositories", blank=True,
                                        through="RepositoryChangeset")

    objects = ArchivableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "repositories"

    def __str__(self):
        return self.name

    def clone_owner(self):
        """The repository whose local clone this one uses (the root of its forks)."""
        owner, seen = self, {self.pk}
        while owner.fork_of_id is not None and owner.fork_of_id not in seen:
            seen.add(owner.fork_of_id)
            owner = owner.fork_of
        return owner

    def last_push_id(self):
        return self.pushes.aggregate(last=models.Max("push_id"))["last"] or 0


def text_digest(text):
    """A unique key for text of any length: exact bytes, whatever the database's collation."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def path_digest(path):
    """The key that carries File uniqueness."""
    return text_digest(path)


class Branch(models.Model):
    """A Mercurial branch name: any length, as Mercurial allows; ``name_hash`` carries uniqueness."""

    name = models.TextField()
    name_hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        verbose_name_plural = "branches"

    def save(self, *args, **kwargs):
        self.name_hash = text_digest(self.name)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.name


class File(models.Model):
    """A path touched by some changeset.

    ``path`` is unique by meaning; the uniqueness is enforced on
    ``path_hash`` because indexes cannot hold arbitrarily long paths and some
    collations fold case and trailing spaces.
    """

    path = models.TextField()
    path_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        # A constraint, as for a changeset's revision: a monorepo's first import writes a row per path.
        constraints = [models.UniqueConstraint(fields=["path_hash"], name="unique_file_path_hash")]

    def save(self, *args, **kwargs):
        self.path_hash = path_digest(self.path)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.path


class ChangesetQuerySet(models.QuerySet):
    def placeholders(self):
        return self.filter(placeholder=True)

    def complete(self):
        return self.filter(placeholder=False)


class Changeset(models.Model):
    """A Mercurial changeset or a git commit, shared by every repository that contains it.

    git commits have no named branch: their ``branch`` is empty.

    A *placeholder* holds only the revision: it was named (e.g. by a
    compare-locales run) before its push arrived. Ingesting the push fills in
    the same row.
    """

    # Unique by a constraint (Meta), not ``unique=True``, which on PostgreSQL adds a second index, for
    # LIKE queries that nothing runs: every changeset written pays for each index of its random key.
    revision = models.CharField(max_length=40)
    user = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="changesets")
    files = models.ManyToManyField(File, related_name="changesets", blank=True, through="ChangesetFile")
    parents = models.ManyToManyField("self", symmetrical=False, related_name="children", blank=True,
                                     through="ChangesetParent")
    placeholder = models.BooleanField(default=False, db_index=True)

    objects = ChangesetQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["revision"], name="unique_changeset_revision")]

    def __str__(self):
        return self.revision[:12]

    @property
    def short_revision(self):
        return self.revision[:12]


class Push(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="pushes")
    push_id = models.PositiveIntegerField()
    user = models.TextField()
    push_date = models.DateTimeField(db_index=True)
    changesets = models.ManyToManyField(Changeset, related_name="pushes", through="PushChangeset")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "push_id"], name="unique_push_per_repository")]
        ordering = ["repository", "push_id"]

    def __str__(self):
        return f"{self.repository.name}#{self.push_id}"


def _link_to(model, indexed=True):
    """A link table's foreign key (see the module's docstring): unconstrained, hidden from ``model``;
    ``indexed=False`` for the first column, which the unique pair indexes."""
    return models.ForeignKey(model, on_delete=models.CASCADE, db_constraint=False, db_index=indexed, related_name="+")


class RepositoryChangeset(models.Model):
    """``Repository.changesets``: the changesets of the repository's stored pushes."""

    repository = _link_to(Repository, indexed=False)
    changeset = _link_to(Changeset)

    class Meta:
        db_table = "life_repository_changesets"
        # unique_together, as Django wrote it for the link table this model describes (0009).
        unique_together = [("repository", "changeset")]


class PushChangeset(models.Model):
    """``Push.changesets``."""

    push = _link_to(Push, indexed=False)
    changeset = _link_to(Changeset)

    class Meta:
        db_table = "life_push_changesets"
        unique_together = [("push", "changeset")]


class ChangesetFile(models.Model):
    """``Changeset.files``: the paths a changeset touched."""

    changeset = _link_to(Changeset, indexed=False)
    file = _link_to(File)

    class Meta:
        db_table = "life_changeset_files"
        unique_together = [("changeset", "file")]


class ChangesetParent(models.Model):
    """``Changeset.parents``: from a changeset to each of its parents."""

    from_changeset = _link_to(Changeset, indexed=False)
    to_changeset = _link_to(Changeset)

    class Meta:
        db_table = "life_changeset_parents"
        unique_together = [("from_changeset", "to_changeset")]


class Tree(models.Model):
    """What a compare-locales configuration covers: the repositories it reads.

    compare-locales runs name a tree by its configuration: the repository
    holding it and the path of the configuration file in there.
    """

    code = models.CharField(max_length=50, unique=True)
    repositories = models.ManyToManyField(Repository, related_name="trees", blank=True)
    l10n = models.ForeignKey(Forest, null=True, blank=True, on_delete=models.SET_NULL, related_name="trees")
    config_repository = models.ForeignKey(
        Repository, null=True, blank=True, on_delete=models.SET_NULL, related_name="configured_trees"
    )
    config_path = models.CharField(max_length=255, blank=True, default="")
    # A computed tree: the worker compares its locales against the reference (config_repository +
    # config_path: a `_data/<channel>.json` or a compare-locales `.toml`) on every push.
    computed = models.BooleanField(default=False, help_text="comparisons computed by the worker from pushes")
    locales_repository = models.ForeignKey(
        Repository,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="locale_trees",
        help_text="a repository with a folder per locale (else the l10n forest has a repository per locale)",
    )
    archived = models.BooleanField(default=False, help_text="its reference is gone upstream; history kept")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["config_repository", "config_path"], name="unique_tree_config")
        ]

    def __str__(self):
        return self.code


class SyncState(models.Model):
    """How up to date a repository is, kept by every ingestion (message, backfill, reprocess).

    Successes are recorded in the same transaction as the data they stored;
    failures in a transaction of their own, so a rollback cannot erase them.
    """

    repository = models.OneToOneField(Repository, on_delete=models.CASCADE, related_name="sync_state")
    last_synced = models.DateTimeField(null=True, blank=True, help_text="when it was last brought up to date")
    upstream_push_id = models.PositiveIntegerField(default=0, help_text="newest push id seen upstream")
    stored_push_id = models.PositiveIntegerField(default=0, help_text="newest push id stored")
    last_rejection = models.TextField(
        blank=True, default="", help_text="the last pushes upstream lists that cannot be stored, and why"
    )
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    failures = models.PositiveIntegerField(default=0, help_text="consecutive failures")
    next_attempt = models.DateTimeField(null=True, blank=True, help_text="backfill leaves it alone until then")
    # git has no push ids upstream: what is stored is known by the branch's commit it covers.
    stored_revision = models.CharField(
        max_length=40, blank=True, default="", help_text="git: the tracked branch's commit stored with all its history"
    )

    def __str__(self):
        return f"{self.repository.name}: {self.stored_push_id}/{self.upstream_push_id}"
