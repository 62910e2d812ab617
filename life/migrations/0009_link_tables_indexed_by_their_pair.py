"""The link tables become models of their own (life/models.py), and lose the index of their first
column, which their unique pair already indexes: every link written paid for it (a fifth of writing
one on PostgreSQL). MariaDB never had it (InnoDB let the pair serve the old foreign key).

The tables are those Django made for the many-to-many fields: the models are declared as they are
(state only), then their first column's index is dropped.
"""

import django.db.models.deletion
from django.db import migrations, models

# (model, Django's table, first column, second column, the many-to-many field it serves)
LINKS = [
    ("ChangesetFile", "life_changeset_files", ("changeset", "life.changeset"), ("file", "life.file"),
     ("changeset", "files", models.ManyToManyField(blank=True, related_name="changesets", through="life.ChangesetFile",
                                                   to="life.file"))),
    ("ChangesetParent", "life_changeset_parents", ("from_changeset", "life.changeset"),
     ("to_changeset", "life.changeset"),
     ("changeset", "parents", models.ManyToManyField(blank=True, related_name="children",
                                                    through="life.ChangesetParent", to="life.changeset"))),
    ("PushChangeset", "life_push_changesets", ("push", "life.push"), ("changeset", "life.changeset"),
     ("push", "changesets", models.ManyToManyField(related_name="pushes", through="life.PushChangeset",
                                                   to="life.changeset"))),
    ("RepositoryChangeset", "life_repository_changesets", ("repository", "life.repository"),
     ("changeset", "life.changeset"),
     ("repository", "changesets", models.ManyToManyField(blank=True, related_name="repositories",
                                                         through="life.RepositoryChangeset", to="life.changeset"))),
]


def _link(to, indexed=True):
    return models.ForeignKey(db_constraint=False, db_index=indexed, on_delete=django.db.models.deletion.CASCADE,
                             related_name="+", to=to)


def _as_django_made_it(name, table, first, second, m2m):
    model_name, field_name, field = m2m
    return [
        migrations.CreateModel(
            name=name,
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (first[0], _link(first[1])),
                (second[0], _link(second[1])),
            ],
            options={"db_table": table, "unique_together": {(first[0], second[0])}},
        ),
        migrations.AlterField(model_name=model_name, name=field_name, field=field),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("life", "0008_unique_keys_one_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[operation for link in LINKS for operation in _as_django_made_it(*link)],
        ),
        *(migrations.AlterField(model_name=name.lower(), name=first[0], field=_link(first[1], indexed=False))
          for name, _, first, _, _ in LINKS),
    ]
