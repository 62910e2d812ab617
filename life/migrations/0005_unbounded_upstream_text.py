"""Upstream text of any length: branch names (unique by their SHA-256, as file paths are) and push users.

Mercurial accepts branch names and users of any length; a 255-character
column made longer ones a database error. Existing rows keep their values.
Also SyncState.last_rejection: pushes upstream lists that cannot be stored.
"""

import hashlib

from django.db import migrations, models


def hash_branch_names(apps, schema_editor):
    Branch = apps.get_model("life", "Branch")
    for branch in Branch.objects.all().only("id", "name"):
        digest = hashlib.sha256(branch.name.encode("utf-8", "surrogateescape")).hexdigest()
        Branch.objects.filter(pk=branch.pk).update(name_hash=digest)


class Migration(migrations.Migration):

    dependencies = [
        ("life", "0004_repository_kind_branch_and_stored_revision"),
    ]

    operations = [
        migrations.AddField(
            model_name="branch",
            name="name_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(hash_branch_names, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="branch",
            name="name_hash",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="branch",
            name="name",
            field=models.TextField(),
        ),
        migrations.AlterField(
            model_name="push",
            name="user",
            field=models.TextField(),
        ),
        migrations.AddField(
            model_name="syncstate",
            name="last_rejection",
            field=models.TextField(
                blank=True, default="", help_text="the last pushes upstream lists that cannot be stored, and why"
            ),
        ),
    ]
