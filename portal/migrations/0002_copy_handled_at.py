from django.db import migrations


def copy_handled_at(apps, schema_editor):
    """Dispatch.handled_at now drives the to-do lists: fill it from existing Handling rows."""
    Handling = apps.get_model("portal", "Handling")
    Dispatch = apps.get_model("relance", "Dispatch")
    for dispatch_id, handled_at in Handling.objects.values_list("dispatch_id", "handled_at").iterator():
        Dispatch.objects.filter(pk=dispatch_id).update(handled_at=handled_at)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("relance", "0007_dispatch_handled_at"),
    ]

    operations = [migrations.RunPython(copy_handled_at, migrations.RunPython.noop)]
