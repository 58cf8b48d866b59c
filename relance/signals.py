"""Receivers keeping each task's django-q2 Schedule in step with the task and its customer."""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from . import scheduling
from .models import Customer, ReminderTask

# Customer fields that change when or where its tasks run.
CUSTOMER_SCHEDULE_FIELDS = ("active", "timezone", "worker_cluster")


@receiver(post_save, sender=ReminderTask, dispatch_uid="relance_task_schedule_saved")
def task_saved(sender, instance, raw=False, **kwargs):
    if raw:  # loaddata: the schedules are repaired by sync_schedules
        return
    scheduling.sync_task_schedule(instance)


@receiver(post_delete, sender=ReminderTask, dispatch_uid="relance_task_schedule_deleted")
def task_deleted(sender, instance, **kwargs):
    scheduling.remove_task_schedule(instance.pk)


@receiver(pre_save, sender=Customer, dispatch_uid="relance_customer_schedule_before")
def customer_before_save(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        instance._schedule_fields_before = None
        return
    instance._schedule_fields_before = (
        Customer.objects.filter(pk=instance.pk).values_list(*CUSTOMER_SCHEDULE_FIELDS).first())


@receiver(post_save, sender=Customer, dispatch_uid="relance_customer_schedule_saved")
def customer_saved(sender, instance, created=False, raw=False, **kwargs):
    before = getattr(instance, "_schedule_fields_before", None)
    if raw or created or before == tuple(getattr(instance, f) for f in CUSTOMER_SCHEDULE_FIELDS):
        return
    for task in instance.tasks.all():
        task.customer = instance
        scheduling.sync_task_schedule(task)
