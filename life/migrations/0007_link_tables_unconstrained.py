"""The link tables lose their foreign key constraints (see life/models.py): a third of an import's time.

Django alters nothing in the database when an M2M field's ``db_constraint`` changes (the field is not
concrete), so the constraints of the auto-created link tables are dropped here, by altering the link
tables' own foreign keys.
"""

import copy

from django.db import migrations, models

LINKS = [("changeset", "files"), ("changeset", "parents"), ("push", "changesets"), ("repository", "changesets")]


def _alter_links(apps, schema_editor, constrained):
    for model_name, field_name in LINKS:
        through = apps.get_model("life", model_name)._meta.get_field(field_name).remote_field.through
        for old in [field for field in through._meta.local_fields if field.is_relation]:
            new = copy.copy(old)
            new.db_constraint = constrained
            if old.db_constraint != constrained:
                schema_editor.alter_field(through, old, new)


def unconstrain(apps, schema_editor):
    _alter_links(apps, schema_editor, constrained=False)


def constrain(apps, schema_editor):
    _alter_links(apps, schema_editor, constrained=True)


class Migration(migrations.Migration):

    dependencies = [
        ("life", "0006_computed_trees"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(unconstrain, constrain)],
            state_operations=[
                migrations.AlterField(
                    model_name="changeset",
                    name="files",
                    field=models.ManyToManyField(blank=True, db_constraint=False, related_name="changesets",
                                                 to="life.file"),
                ),
                migrations.AlterField(
                    model_name="changeset",
                    name="parents",
                    field=models.ManyToManyField(blank=True, db_constraint=False, related_name="children",
                                                 to="life.changeset"),
                ),
                migrations.AlterField(
                    model_name="push",
                    name="changesets",
                    field=models.ManyToManyField(db_constraint=False, related_name="pushes", to="life.changeset"),
                ),
                migrations.AlterField(
                    model_name="repository",
                    name="changesets",
                    field=models.ManyToManyField(blank=True, db_constraint=False, related_name="repositories",
                                                 to="life.changeset"),
                ),
            ],
        ),
    ]
