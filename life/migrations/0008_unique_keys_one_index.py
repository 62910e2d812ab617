"""A changeset's revision and a file's path digest are unique by constraints instead of
``unique=True``, which on PostgreSQL also made a ``varchar_pattern_ops`` index for LIKE queries that
nothing runs: every changeset an import writes paid for two indexes of its random key (a fifth to a
quarter of PostgreSQL's work in a history import), and a monorepo's first import writes a File row
per path.

Each constraint comes before the field's own index goes, so no value is ever without a unique index
(MariaDB does not alter tables inside a transaction).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("life", "0007_link_tables_unconstrained"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="changeset",
            constraint=models.UniqueConstraint(fields=("revision",), name="unique_changeset_revision"),
        ),
        migrations.AlterField(
            model_name="changeset",
            name="revision",
            field=models.CharField(max_length=40),
        ),
        migrations.AddConstraint(
            model_name="file",
            constraint=models.UniqueConstraint(fields=("path_hash",), name="unique_file_path_hash"),
        ),
        migrations.AlterField(
            model_name="file",
            name="path_hash",
            field=models.CharField(editable=False, max_length=64),
        ),
    ]
