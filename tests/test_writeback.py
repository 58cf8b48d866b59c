"""The Gestimum write-back happens exactly once, even when the process dies around it."""

import pytest

from relance import writeback
from relance.engine import run_task
from relance.gestimum import models as g
from relance.gestimum.gateway import Gateway
from relance.models import Dispatch

pytestmark = pytest.mark.django_db


class ProcessDied(BaseException):
    """Stands for a killed process: nothing in the engine catches it."""


def test_a_write_back_committed_in_gestimum_but_not_recorded_here_is_not_written_twice(
        gestimum, smtp_server, make_task, monkeypatch):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", piece="FA1")
    task = make_task(writeback_relances=True)
    real_mark_written = writeback._mark_written

    def die_once(dispatches):
        monkeypatch.setattr(writeback, "_mark_written", real_mark_written)
        raise ProcessDied  # Gestimum has committed; the app database never hears of it

    monkeypatch.setattr(writeback, "_mark_written", die_once)
    with pytest.raises(ProcessDied):
        run_task(task.pk)
    dispatch = Dispatch.objects.get()
    assert dispatch.writeback_pending and dispatch.writeback_ref
    assert len(gestimum.rows(g.Action)) == 1

    second = run_task(task.pk)

    [action] = gestimum.rows(g.Action)
    assert action.act_numero == dispatch.writeback_ref
    assert gestimum.echeance(ech).ech_nbrel == 1
    assert len(gestimum.rows(g.Relance)) == 1
    dispatch.refresh_from_db()
    assert not dispatch.writeback_pending and dispatch.writeback_at is not None
    assert second.sent == 0 and len(smtp_server.messages) == 1


def test_a_write_back_that_died_before_gestimum_committed_is_written_with_its_reserved_number(
        gestimum, smtp_server, make_task, monkeypatch):
    gestimum.tiers("CL001")
    ech = gestimum.invoice("CL001", piece="FA1")
    task = make_task()
    real_write_back = Gateway.write_back

    def die_once(self, records, **options):
        monkeypatch.setattr(Gateway, "write_back", real_write_back)
        raise ProcessDied

    monkeypatch.setattr(Gateway, "write_back", die_once)
    with pytest.raises(ProcessDied):
        run_task(task.pk)
    reserved = Dispatch.objects.get().writeback_ref
    assert reserved and gestimum.rows(g.Action) == []

    run_task(task.pk)

    [action] = gestimum.rows(g.Action)
    assert action.act_numero == reserved
    assert gestimum.echeance(ech).ech_nbrel == 1
    assert not Dispatch.objects.get().writeback_pending


def test_each_send_keeps_the_number_of_its_gestimum_action(gestimum, smtp_server, make_task):
    gestimum.tiers("CL001")
    gestimum.tiers("CL002", email="")
    gestimum.invoice("CL001", piece="FA1")
    gestimum.invoice("CL002", piece="FA2")

    run_task(make_task().pk)

    actions = {a.act_numero: a for a in gestimum.rows(g.Action)}
    for dispatch in Dispatch.objects.all():
        assert actions[dispatch.writeback_ref].pcf_code == dispatch.pcf_code
