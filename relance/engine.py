"""One run of one reminder task: select, plan, render, re-check, send or divert, record.

Exactly-once rests on the Dispatch row: it is created (unique per customer,
échéance and level) before anything leaves, moves to ``sending`` right before
the transport is called and to ``sent`` right after. A run that dies in
between leaves a ``sending`` row that the next run flags for review instead of
sending again.
"""

import logging
import mimetypes
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import addressing, divert, documents, dsn, rendering, scheduling, templating, tracking, writeback
from .gestimum.gateway import GestimumUnavailable, open_gateway
from .gestimum.selection import CriterionSpec, Selection, SelectionError, split_codes
from .mailer import Mailer, SendError, build_message, new_message_id
from .models import AddressSource, Dispatch, PauseIndex, ReminderTask, TaskRun

logger = logging.getLogger(__name__)

Status = Dispatch.Status

# Échéances are re-checked in Gestimum in groups of this size, right after
# their PDFs are rendered and right before they are sent. One group per page
# (GESTIMUM PAGE_SIZE, 1,000) keeps a run within its budget of Gestimum
# statements (bench/README.md): one read of lines and one re-check per page.
RECHECK_CHUNK = 1000

SKIP_ALREADY_SENT = "déjà relancée à ce niveau"
SKIP_PREVIOUS_LEVEL = "niveau précédent non envoyé ou trop récent"
SKIP_PAID = "réglée entre-temps (vérifiée juste avant l'envoi)"
SKIP_REVIEW = "envoi interrompu à vérifier dans l'admin"
SKIP_CLAIMED = "prise en charge par une autre exécution"
SKIP_PAUSED = "en pause (débiteur ou facture suspendu)"
SKIP_DEBTOR_GAP = "débiteur relancé récemment (écart minimum entre deux relances)"
CLAIM_LOST = ("Exécution arrêtée : sa réservation a expiré (Q_TIMEOUT) et une autre exécution a repris "
              "la tâche ; les échéances restantes lui sont laissées.")


class TaskError(Exception):
    """The task cannot run as configured; the message is French and actionable."""


@dataclass
class PlannedItem:
    candidate: object
    action: str  # "email", "divert" or "skip"
    reason: str = ""
    recipients: addressing.Recipients = field(default_factory=addressing.Recipients)
    retry_dispatch_id: int | None = None

    @property
    def to(self):
        return self.recipients.to

    @property
    def cc(self):
        return self.recipients.cc

    @property
    def bcc(self):
        return self.recipients.bcc


def group_key(item):
    """Échéances sharing this key go in one e-mail when the task groups by debtor."""
    return item.candidate.tiers.code, tuple(item.to), tuple(item.cc), tuple(item.bcc)


@dataclass
class SampleMessage:
    from_email: str
    reply_to: list
    to: list
    cc: list
    bcc: list
    subject: str
    body: str
    attachment_names: list
    pdf_filename: str
    pdf: bytes


@dataclass
class Preview:
    items: list = field(default_factory=list)
    selected: int = 0
    skip_counts: dict = field(default_factory=dict)
    sample: SampleMessage | None = None
    error: str | None = None


def task_sources(task):
    return [addressing.SourceSpec(role=s.role, kind=s.kind, value=s.value)
            for s in task.address_sources.all()]


def task_selection(task, sources):
    return Selection(
        trigger=task.trigger,
        days=task.days,
        max_days=task.max_days,
        doc_stypes=split_codes(task.doc_stypes),
        families=split_codes(task.families),
        subfamilies=split_codes(task.subfamilies),
        representatives=split_codes(task.representatives),
        payment_modes=split_codes(task.payment_modes),
        min_remaining=task.min_remaining,
        tiers_include=split_codes(task.tiers_include),
        tiers_exclude=split_codes(task.tiers_exclude),
        criteria=tuple(CriterionSpec(c.table, c.column.upper(), c.operator, c.value)
                       for c in task.criteria.all()),
        address_columns=addressing.address_columns(sources),
        needs_contacts=uses_contacts(task, sources),
    )


def uses_contacts(task, sources):
    """Whether a run must read the tiers' contacts (one Gestimum query per page)."""
    contact_kinds = (AddressSource.Kind.CONTACT_FUNCTION, AddressSource.Kind.CONTACT_QUALIFIER)
    if any(source.kind in contact_kinds for source in sources):
        return True
    default_subject, default_body = templating.default_templates(task)
    body = task.body_template if (task.body_template or "").strip() else default_body
    return "contact_nom" in (task.subject_template or default_subject) + body


def whole_debtors(pages):
    """Pages in debtor order, re-cut so that no debtor straddles two of them.

    The last debtor of a page waits for the next page (or the end); a debtor
    bigger than a page makes one larger page.
    """
    carry = []
    for page in pages:
        page = carry + page
        last = page[-1].tiers.code
        cut = len(page)
        while cut and page[cut - 1].tiers.code == last:
            cut -= 1
        carry = page[cut:]
        if cut:
            yield page[:cut]
    if carry:
        yield carry


def local_today(customer):
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(customer.timezone)).date()


class TaskRunner:
    def __init__(self, task, *, today=None, origin=TaskRun.Origin.COMMAND):
        self.task = task
        self.customer = task.customer
        self.today = today or local_today(self.customer)
        self.origin = origin
        self.sources = task_sources(task)
        self.selection = task_selection(task, self.sources)
        self.run = None
        self.skips = Counter()
        self._attachments = None
        self.pdfs = documents.DocumentPdfs(task=task, customer=self.customer, today=self.today)
        self.gestimum_queries = None  # Gateway.queries at the end of a run
        self.flushed = 0  # sends of this run already written back to Gestimum
        # Hard-bounced addresses, loaded once: items whose only address is here are diverted.
        self.suppressed = tracking.suppressed_addresses(self.customer)
        # Debtors and invoices paused (dispute…) on the run's date, loaded once.
        self.pauses = PauseIndex.load(self.customer, self.today)

    def pages(self, gateway, **options):
        grouped = self.task.group_by_debtor
        pages = gateway.candidate_pages(self.selection, today=self.today, by_debtor=grouped, **options)
        return whole_debtors(pages) if grouped else pages

    # -- planning (shared by runs and previews) --------------------------------------
    def plan(self, candidates):
        """Decide, for one page, what happens to each candidate. Reads the app DB only."""
        numbers = [c.echeance.numero for c in candidates]
        existing = dict(
            Dispatch.objects.filter(customer=self.customer, level=self.task.level,
                                    ech_numero__in=numbers).values_list("ech_numero", "id")
        )
        statuses = dict(
            Dispatch.objects.filter(id__in=existing.values()).values_list("id", "status")
        )
        previous_ok = None
        if self.task.level > 1 and self.task.require_previous_level:
            previous_ok = set(
                Dispatch.objects.filter(customer=self.customer, level=self.task.level - 1,
                                        ech_numero__in=numbers,
                                        status__in=Dispatch.PREVIOUS_LEVEL_DONE,
                                        sent_at__lte=timezone.now() - timedelta(
                                            days=self.task.min_days_since_previous))
                .values_list("ech_numero", flat=True)
            )
        recent_debtors = self.recently_reminded_debtors(candidates)
        items = []
        for candidate in candidates:
            numero = candidate.echeance.numero
            retry_id = None
            if numero in existing:
                status = statuses.get(existing[numero])
                if status == Status.NEEDS_REVIEW:
                    items.append(PlannedItem(candidate, "skip", SKIP_REVIEW))
                    continue
                if status not in (Status.FAILED, Status.PENDING):
                    items.append(PlannedItem(candidate, "skip", SKIP_ALREADY_SENT))
                    continue
                retry_id = existing[numero]  # a failed or never-attempted send is tried again
            if self.pauses.pause_for(candidate.tiers.code, candidate.echeance.piece):
                items.append(PlannedItem(candidate, "skip", SKIP_PAUSED))
                continue
            if candidate.tiers.code in recent_debtors:
                items.append(PlannedItem(candidate, "skip", SKIP_DEBTOR_GAP))
                continue
            if previous_ok is not None and numero not in previous_ok:
                items.append(PlannedItem(candidate, "skip", SKIP_PREVIOUS_LEVEL))
                continue
            recipients = addressing.resolve(self.sources, candidate, suppressed=self.suppressed)
            action = "email" if recipients.to else "divert"
            items.append(PlannedItem(candidate, action, recipients.divert_reason, recipients, retry_id))
        return items

    def recently_reminded_debtors(self, candidates):
        """Debtors of this page reminded (any task, e-mail or post) within the task's minimum gap.

        Sends of the current run don't count: a debtor's invoices of one run all go out.
        """
        gap = self.task.min_days_between_debtor_reminders
        if not gap:
            return set()
        recent = Dispatch.objects.filter(
            customer=self.customer, pcf_code__in={c.tiers.code for c in candidates},
            status__in=Dispatch.PREVIOUS_LEVEL_DONE, sent_at__gt=timezone.now() - timedelta(days=gap))
        if self.run is not None:
            recent = recent.exclude(run=self.run)
        return set(recent.values_list("pcf_code", flat=True).distinct())

    # -- message parts -----------------------------------------------------------------
    def attachments(self):
        if self._attachments is None:
            self._attachments = []
            for attachment in self.task.attachments.all():
                with attachment.file.open("rb") as handle:
                    content = handle.read()
                mimetype = mimetypes.guess_type(attachment.display_name)[0] or "application/octet-stream"
                self._attachments.append((attachment.display_name, content, mimetype))
        return self._attachments

    def message_text(self, candidates):
        """(subject, body) of one e-mail carrying ``candidates`` (one, unless grouped by debtor)."""
        context = templating.build_group_context(customer=self.customer, task=self.task,
                                                 candidates=candidates, today=self.today)
        return templating.render_message(task=self.task, context=context)

    # -- preview -----------------------------------------------------------------------
    def preview(self, *, limit=200):
        preview = Preview()
        with open_gateway(self.customer) as gateway:
            preview.selected = gateway.count_candidates(self.selection, today=self.today)
            for page in gateway.candidate_pages(self.selection, today=self.today, page_size=limit,
                                                by_debtor=self.task.group_by_debtor):
                preview.items = self.plan(page)
                break
            sample = next((i for i in preview.items if i.action == "email"), None) or next(
                (i for i in preview.items if i.action == "divert"), None)
            if sample is not None:
                gateway.attach_lines([sample.candidate])
                preview.sample = self.sample_message(sample, preview.items)
        preview.skip_counts = dict(Counter(i.reason for i in preview.items if i.action == "skip"))
        return preview

    def plan_all(self):
        """Every planned item of every page, for a dry run. Nothing is recorded."""
        with open_gateway(self.customer) as gateway:
            for page in self.pages(gateway):
                yield from self.plan(page)

    def sample_message(self, item, items=()):
        """The message of ``item``; in one-e-mail-per-debtor mode, with the other ``items``
        of its e-mail (same debtor, same recipients)."""
        group = [item]
        if self.task.group_by_debtor and item.action == "email":
            group = [i for i in items if i.action == "email" and group_key(i) == group_key(item)] or group
        candidates = [i.candidate for i in group]
        subject, body = self.message_text(candidates)
        try:
            pdf = self.pdfs.render(item.candidate)
        except rendering.RenderError as exc:
            raise TaskError(str(exc)) from exc
        pdf_names = list(dict.fromkeys(rendering.pdf_filename(c) for c in candidates))
        return SampleMessage(
            from_email=self.customer.from_header,
            reply_to=[self.customer.reply_to] if self.customer.reply_to else [],
            to=item.to, cc=item.cc, bcc=item.bcc, subject=subject, body=body,
            attachment_names=pdf_names + [name for name, _, _ in self.attachments()],
            pdf_filename=rendering.pdf_filename(item.candidate), pdf=pdf,
        )

    # -- a real run --------------------------------------------------------------------
    def execute(self):
        # One run per task at a time, whoever fires it (scheduler, admin, command, another
        # machine): the claim is a conditional UPDATE that lets exactly one contender in.
        self.task_claim = scheduling.claim_task(self.task)
        if self.task_claim is None:
            raise scheduling.TaskAlreadyRunning(
                f"Tâche « {self.task.name} » déjà en cours d'exécution : rien n'a été lancé.")
        try:
            return self._execute_claimed()
        finally:
            if self.task_claim is not None:  # a lost claim belongs to the run that took it
                scheduling.release_task(self.task, self.task_claim)

    def _execute_claimed(self):
        self.run = TaskRun.objects.create(task=self.task, origin=self.origin)
        errors = []
        try:
            self.recover_interrupted()
            # Bounces whose Gestimum action or notice failed earlier (server down) are retried.
            tracking.complete_pending_bounces(customer=self.customer)
            with open_gateway(self.customer) as gateway, Mailer() as mailer:
                self.flush_writebacks(gateway)
                for page in self.pages(gateway):
                    self.run.selected += len(page)
                    self.process_page(gateway, mailer, page, errors)
                    if self.run.sent + self.run.diverted - self.flushed >= writeback.WRITEBACK_BATCH:
                        self.flush_writebacks(gateway)
                    self.save_counts(errors)
                    # Nothing kills a command-line run at Q_TIMEOUT: keep the task for the next
                    # page, or stop sending if another run took it once the claim expired.
                    self.task_claim = scheduling.renew_claim(self.task, self.task_claim)
                    if self.task_claim is None:
                        errors.append(CLAIM_LOST)
                        break
                if self.task_claim is not None:  # else the run holding the task writes back our sends
                    self.flush_writebacks(gateway)
                self.gestimum_queries = gateway.queries  # for benchmarks and run reports
            if self.task_claim is None:
                status = TaskRun.Status.FAILED
            else:
                status = TaskRun.Status.PARTIAL if self.run.failed else TaskRun.Status.SUCCEEDED
        except (GestimumUnavailable, SelectionError, TaskError) as exc:
            errors.append(str(exc))
            status = TaskRun.Status.FAILED
        except Exception as exc:
            logger.exception("Exécution de la tâche %s interrompue", self.task.pk)
            errors.append(f"Erreur inattendue : {exc!r}")
            status = TaskRun.Status.FAILED
        self.run.status = status
        self.run.finished_at = timezone.now()
        self.save_counts(errors)
        return self.run

    def save_counts(self, errors):
        self.run.skipped = sum(self.skips.values())
        self.run.skip_reasons = dict(self.skips)
        self.run.errors = "\n".join(errors[:200])
        self.run.save()

    def recover_interrupted(self):
        """Flag sends a dead run left half-done; never send them again blindly."""
        cutoff = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"])
        TaskRun.objects.filter(task=self.task, status=TaskRun.Status.RUNNING,
                               started_at__lt=cutoff).update(
            status=TaskRun.Status.FAILED, finished_at=timezone.now(),
            errors="Exécution interrompue (processus arrêté) : voir les envois « à vérifier ».")
        interrupted = Dispatch.objects.filter(task=self.task, status=Status.SENDING).exclude(
            run__status=TaskRun.Status.RUNNING)
        interrupted.update(
            status=Status.NEEDS_REVIEW,
            error="L'exécution s'est arrêtée pendant l'envoi : vérifiez si le message est parti "
                  "avant de le confirmer ou d'autoriser un nouvel envoi.")

    def process_page(self, gateway, mailer, page, errors):
        items = self.plan(page)
        for item in items:
            if item.action == "skip":
                self.skips[item.reason] += 1
        active = [i for i in items if i.action != "skip"]
        # One e-mail per debtor: e-mails are gathered here and sent once the page is rendered
        # and re-checked (whole_debtors keeps a debtor in one page).
        grouped = self.task.group_by_debtor
        groups = {}
        for start in range(0, len(active), RECHECK_CHUNK):
            chunk = active[start:start + RECHECK_CHUNK]
            gateway.attach_lines([i.candidate for i in chunk])
            rendered = {}
            hashes = {id(item): self.pdfs.data_hash(item.candidate) for item in chunk}
            stored = self.pdfs.stored_for(hashes.values())
            for item in chunk:
                try:
                    rendered[id(item)] = self.pdfs.get(item.candidate, hashes[id(item)], stored)
                except rendering.RenderError as exc:
                    rendered[id(item)] = exc
            unpaid = gateway.still_unpaid([i.candidate.echeance.numero for i in chunk])
            for item in chunk:
                echeance = item.candidate.echeance
                if echeance.numero not in unpaid:
                    self.skips[SKIP_PAID] += 1
                    continue
                amount, received = unpaid[echeance.numero]
                pdf = rendered[id(item)]
                if (amount, received) != (echeance.amount, echeance.received):
                    # A partial payment arrived since the selection: remind what is left.
                    echeance.amount, echeance.received = amount, received
                    try:
                        pdf = self.pdfs.render(item.candidate)
                    except rendering.RenderError as exc:
                        pdf = exc
                if grouped and item.action == "email" and not isinstance(pdf, Exception):
                    groups.setdefault(group_key(item), []).append((item, pdf))
                    continue
                try:
                    self.handle(item, pdf, mailer, errors)
                except Exception as exc:
                    # One broken échéance must not stop the others; its Dispatch
                    # stays claimed (pending or sending) and is looked at next run.
                    logger.exception("Échéance %s : erreur inattendue", echeance.numero)
                    self.run.failed += 1
                    errors.append(f"{echeance.piece or echeance.numero} : erreur inattendue {exc!r}")
        for members in groups.values():
            try:
                self.email(members, mailer, errors)
            except Exception as exc:
                logger.exception("Débiteur %s : erreur inattendue", members[0][0].candidate.tiers.code)
                self.run.failed += len(members)
                errors.append(f"débiteur {members[0][0].candidate.tiers.code} : erreur inattendue {exc!r}")

    def claim(self, item, **fields):
        """Take the échéance for this level, or return None if another run holds it.

        ``fields`` are stored in the same statement: an e-mail is claimed directly
        in the ``sending`` state with its message, one commit before the transport.
        """
        candidate = item.candidate
        echeance = candidate.echeance
        values = {
            "task": self.task, "run": self.run, "status": Status.PENDING,
            "doc_numero": echeance.doc_numero, "doc_piece": echeance.piece,
            "pcf_code": candidate.tiers.code, "tiers_name": candidate.tiers.name[:200],
            "due_date": echeance.due_date, "amount": echeance.amount, "remaining": echeance.remaining,
            **fields,
        }
        if item.retry_dispatch_id:
            claimed = Dispatch.objects.filter(
                pk=item.retry_dispatch_id, status__in=(Status.FAILED, Status.PENDING)
            ).exclude(run=self.run).update(**values, error="", updated_at=timezone.now())
            return Dispatch.objects.get(pk=item.retry_dispatch_id) if claimed else None
        try:
            with transaction.atomic():
                return Dispatch.objects.create(customer=self.customer, level=self.task.level,
                                               ech_numero=echeance.numero, **values)
        except IntegrityError:
            return None

    def handle(self, item, pdf, mailer, errors):
        label = item.candidate.echeance.piece or item.candidate.echeance.numero
        if isinstance(pdf, Exception):
            dispatch = self.claim(item)
            if dispatch is None:
                self.skips[SKIP_CLAIMED] += 1
            else:
                self.fail(dispatch, str(pdf), errors, label)
            return
        if item.action == "email":
            self.email([(item, pdf)], mailer, errors)
            return
        dispatch = self.claim(item, **self.pdf_fields(item, pdf))
        if dispatch is None:
            self.skips[SKIP_CLAIMED] += 1
            return
        self.divert(dispatch, item, pdf, errors, label)

    def pdf_fields(self, item, pdf):
        """The stored PDF of a send (content-addressed file, SHA-256) and its data fingerprint."""
        return {"pdf_data_hash": self.pdfs.data_hash(item.candidate), **documents.store_pdf(pdf)}

    def email(self, members, mailer, errors):
        """One e-mail for ``members`` [(item, pdf)] with the same recipients: one échéance, or
        several of one debtor when the task groups them."""
        subject, body = self.message_text([item.candidate for item, _ in members])
        message_id = new_message_id()
        first = members[0][0]
        claimed = []
        for item, pdf in members:
            dispatch = self.claim(
                item, **self.pdf_fields(item, pdf),
                status=Status.SENDING, channel=Dispatch.Channel.EMAIL, from_email=self.customer.from_header,
                to="; ".join(first.to), cc="; ".join(first.cc), bcc="; ".join(first.bcc),
                subject=subject[:500], body=body, message_id=message_id,
            )
            if dispatch is None:
                self.skips[SKIP_CLAIMED] += 1
            else:
                claimed.append((dispatch, item, pdf))
        if not claimed:
            return
        if len(claimed) < len(members):
            # Another run holds some of them: the message lists only what this one sends.
            subject, body = self.message_text([item.candidate for _, item, _ in claimed])
            Dispatch.objects.filter(pk__in=[d.pk for d, _, _ in claimed]).update(
                subject=subject[:500], body=body)
            for dispatch, _, _ in claimed:
                dispatch.subject, dispatch.body = subject[:500], body
        # Every row is committed in the sending state: the crash-safety point.
        self.send(claimed, mailer, errors)

    def fail(self, dispatch, message, errors, label):
        dispatch.status = Status.FAILED
        dispatch.error = message
        dispatch.save(update_fields=["status", "error", "attempts", "pdf", "pdf_sha256",
                                    "pdf_data_hash", "updated_at"])
        self.run.failed += 1
        errors.append(f"{label} : {message}")

    def divert(self, dispatch, item, pdf, errors, label):
        try:
            path = divert.divert(customer=self.customer, task=self.task, candidate=item.candidate,
                                 pdf=pdf, filename=rendering.pdf_filename(item.candidate),
                                 reason=item.reason,
                                 remaining=item.candidate.echeance.remaining)
        except OSError as exc:
            self.fail(dispatch, f"Réacheminement impossible : {exc}", errors, label)
            return
        dispatch.channel = Dispatch.Channel.POSTAL
        dispatch.status = Status.DIVERTED
        dispatch.divert_path = str(path)
        dispatch.divert_reason = item.reason[:300]
        dispatch.writeback_pending = True
        dispatch.sent_at = timezone.now()
        dispatch.save()
        self.run.diverted += 1

    def send(self, claimed, mailer, errors):
        """Send one e-mail carrying the PDFs of ``claimed`` [(dispatch, item, pdf)], all in the
        sending state with the same message; record the outcome on each."""
        first, item, _ = claimed[0]
        pdfs = {}
        for _, member, pdf in claimed:  # two échéances of one invoice: its PDF once
            pdfs.setdefault(rendering.pdf_filename(member.candidate), pdf)
        message = build_message(
            from_email=first.from_email, to=item.to, cc=item.cc, bcc=item.bcc,
            reply_to=[self.customer.reply_to] if self.customer.reply_to else [],
            subject=first.subject, body=first.body, message_id=first.message_id,
            attachments=[(name, pdf, "application/pdf") for name, pdf in pdfs.items()]
            + list(self.attachments()),
            metadata={"dispatch_id": str(first.pk), "customer": self.customer.slug},
            tags=[f"niveau-{self.task.level}", self.customer.slug],
            return_path=dsn.verp_address(first.pk),
        )
        try:
            attempts, provider_id = mailer.send(message)
        except SendError as exc:
            for dispatch, member, _ in claimed:
                dispatch.attempts += getattr(exc, "attempts", 1)
                label = member.candidate.echeance.piece or member.candidate.echeance.numero
                self.fail(dispatch, str(exc), errors, label)
            return
        sent_at = timezone.now()
        for dispatch, _, _ in claimed:
            dispatch.attempts += attempts
            dispatch.status = Status.SENT
            dispatch.provider_message_id = provider_id[:300]
            dispatch.sent_at = sent_at
            dispatch.writeback_pending = True
            dispatch.save(update_fields=["attempts", "status", "provider_message_id", "sent_at",
                                         "writeback_pending", "updated_at"])
            # A fast provider's webhook may have arrived before the save above.
            tracking.advance_status(dispatch)
        self.run.sent += len(claimed)
        self.run.emails += 1

    def flush_writebacks(self, gateway):
        """Write back this task's recorded sends; called at the start and end of a run
        and every WRITEBACK_BATCH sends."""
        self.flushed = self.run.sent + self.run.diverted
        writeback.flush_pending(task=self.task, gateway=gateway)


def run_task(task_id, *, origin=TaskRun.Origin.COMMAND, today=None):
    """Run one task now; return its TaskRun. Entry point of workers and commands."""
    task = ReminderTask.objects.select_related("customer").get(pk=task_id)
    return TaskRunner(task, today=today, origin=origin).execute()


def preview_task(task, *, today=None, limit=200):
    """What the task would send now. Nothing is sent, written or recorded."""
    runner = TaskRunner(task, today=today)
    try:
        return runner.preview(limit=limit)
    except SelectionError as exc:
        raise TaskError(str(exc)) from exc


def summarize(run):
    """French one-paragraph summary of a run, for commands and notifications."""
    lines = [
        f"Tâche « {run.task.name} » (niveau {run.task.level}) — {run.get_status_display()}",
        f"  échéances sélectionnées : {run.selected}",
        f"  e-mails envoyés         : {run.sent}"
        + (f" documents en {run.emails} e-mail(s)" if run.emails and run.emails != run.sent else ""),
        f"  documents réacheminés   : {run.diverted}",
        f"  ignorées                : {run.skipped}",
    ]
    for reason, count in sorted(run.skip_reasons.items()):
        lines.append(f"      - {reason} : {count}")
    lines.append(f"  en échec                : {run.failed}")
    if run.errors:
        lines.append("  erreurs :")
        lines.extend(f"      - {line}" for line in run.errors.splitlines()[:20])
    return "\n".join(lines)
