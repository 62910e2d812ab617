from django.db import migrations

NULL_REVISION = "0" * 40


def create_null_changeset(apps, schema_editor):
    Branch = apps.get_model("life", "Branch")
    Changeset = apps.get_model("life", "Changeset")
    default, _ = Branch.objects.get_or_create(name="default")
    Changeset.objects.get_or_create(
        revision=NULL_REVISION, defaults={"branch": default, "description": "", "user": ""}
    )


class Migration(migrations.Migration):
    dependencies = [("life", "0001_initial")]

    # The null revision is the parent of every root changeset.
    operations = [migrations.RunPython(create_null_changeset, migrations.RunPython.noop)]
