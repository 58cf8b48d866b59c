"""Customer portal pages. Thin: the customer comes from the logged-in user, data from selectors."""

import functools

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from relance.documents import stored_pdf_response
from relance.formatting import date_long_fr
from relance.models import Dispatch, PauseIndex, ReminderPause

from . import charts, exports, selectors
from .forms import EmailLoginForm, HistoryFilterForm, PauseForm
from .models import Handling

PAGE_SIZE = 50
# The history counts at most this many sends: an exact COUNT(*) over a large
# customer's year (~1,000,000 rows) costs more than the page itself.
HISTORY_COUNT_CAP = 10_000
# Sortable history columns, in display order (keys of selectors.SORTS).
SORT_COLUMNS = [("date", "Date"), ("piece", "Pièce"), ("tiers", "Débiteur"), ("niveau", "Niveau"),
                ("statut", "Statut"), ("echeance", "Échéance"), ("reste", "Reste dû")]


class CappedPaginator(Paginator):
    """A paginator that counts at most ``cap`` rows; ``capped`` says the real total is larger.

    Pages past the cap are not offered: the customer narrows the period or the
    filters instead, which also keeps OFFSET small.
    """

    def __init__(self, object_list, per_page, *, cap):
        super().__init__(object_list, per_page)
        self.cap = cap
        self.capped = False

    @functools.cached_property
    def count(self):
        # COUNT over a LIMITed subquery of primary keys: it stops after cap + 1 index entries.
        # Unordered, so PostgreSQL picks the index that fits the filters, not the sort.
        found = self.object_list.order_by().values("pk")[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)


def customer_required(view):
    """Give the view ``request.customer``; anyone without a portal profile never gets data.

    Staff without a profile are sent to the admin; any other account gets a 404.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        profile = getattr(request.user, "portal_profile", None)
        if profile is None:
            if request.user.is_staff:
                return redirect("admin:index")
            raise Http404("Aucun espace client n'est associé à ce compte.")
        request.customer = profile.customer
        return view(request, *args, **kwargs)

    return wrapper


def _dispatch_or_404(request, pk):
    try:
        return selectors.dispatch_for(request.customer, pk)
    except Dispatch.DoesNotExist:
        raise Http404("Envoi introuvable.") from None


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    authentication_form = EmailLoginForm
    redirect_authenticated_user = True


@customer_required
def dashboard(request):
    customer = request.customer
    months = selectors.last_months(12)
    by_status, by_level = selectors.monthly_volumes(customer, months)
    status_chart = charts.stacked_bars(
        "Envois par mois et par statut", months,
        [(label.capitalize(), by_status[key]) for key, (label, _) in selectors.GROUPS.items()],
        colours=["#2f6f4f", "#4f8fd6", "#c0392b", "#d68a1f", "#6b6b6b"],
    )
    level_chart = charts.stacked_bars(
        "Envois par mois et par niveau de relance", months,
        [(f"Niveau {level}", values) for level, values in by_level.items()],
    )
    bounces = selectors.pending_bounces(customer)
    diverted = selectors.pending_diverted(customer)
    return render(request, "portal/dashboard.html", {
        "figures": selectors.month_figures(customer),
        "month_name": date_long_fr(timezone.localdate()).split(" ", 1)[1],
        "status_chart": status_chart,
        "level_chart": level_chart,
        "bounces": bounces[:20],
        "bounce_count": bounces.count(),
        "diverted_count": diverted.count(),
        "nav": "dashboard",
    })


@customer_required
def history(request):
    form = HistoryFilterForm(request.GET or None, customer=request.customer)
    filters = form.filters() if request.GET else {"sort": selectors.DEFAULT_SORT}
    queryset = selectors.filter_history(selectors.dispatches_for(request.customer), **filters)
    paginator = CappedPaginator(queryset.select_related("task"), PAGE_SIZE, cap=HISTORY_COUNT_CAP)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("sort", None)
    return render(request, "portal/history.html", {
        "form": form, "page": page, "query": query.urlencode(), "sort_query": sort_query.urlencode(),
        "sort": filters["sort"], "sort_columns": SORT_COLUMNS, "nav": "history",
    })


@customer_required
def export_csv(request):
    form = HistoryFilterForm(request.GET or None, customer=request.customer)
    filters = form.filters() if request.GET else {"sort": selectors.DEFAULT_SORT}
    queryset = selectors.filter_history(selectors.dispatches_for(request.customer), **filters)
    name = f"envois-{request.customer.slug}-{timezone.localdate():%Y-%m-%d}.csv"
    response = StreamingHttpResponse(exports.csv_rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@customer_required
def detail(request, pk):
    dispatch = _dispatch_or_404(request, pk)
    address = ""
    if dispatch.status == Dispatch.Status.DIVERTED:
        address = selectors.postal_addresses([dispatch]).get(dispatch.pk, "")
    return render(request, "portal/detail.html", {
        "dispatch": dispatch,
        "events": selectors.events_of(dispatch),
        "recipients": [("À", dispatch.to), ("Copie", dispatch.cc)],
        "postal_address": address,
        "handling": Handling.objects.filter(dispatch=dispatch).select_related("handled_by").first(),
        "same_email": selectors.same_email(dispatch),
        "pause": PauseIndex.load(request.customer, timezone.localdate()).pause_for(
            dispatch.pcf_code, dispatch.doc_piece),
        "nav": "history",
    })


def pdf_filename(dispatch):
    stem = dispatch.doc_piece or dispatch.ech_numero or str(dispatch.pk)
    return f"{stem}-niveau{dispatch.level}.pdf"


@customer_required
def download_pdf(request, pk):
    dispatch = _dispatch_or_404(request, pk)
    return stored_pdf_response(dispatch, filename=pdf_filename(dispatch), as_attachment=True)


@customer_required
def proof(request, pk):
    """The proof of one send (ZIP): summary, message, delivery events, PDF with its SHA-256."""
    dispatch = _dispatch_or_404(request, pk)
    content = exports.proof_archive(dispatch, selectors.events_of(dispatch), pdf_name=pdf_filename(dispatch))
    response = HttpResponse(content, content_type="application/zip")
    stem = pdf_filename(dispatch).removesuffix(".pdf")
    name = f"preuve-envoi-{stem}-{dispatch.pk}.zip"
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@customer_required
def diverted(request):
    pending = list(selectors.pending_diverted(request.customer).select_related("customer", "task"))
    addresses = selectors.postal_addresses(pending)
    for dispatch in pending:
        dispatch.postal_address = addresses.get(dispatch.pk, "")
    return render(request, "portal/diverted.html", {"pending": pending, "nav": "diverted"})


@customer_required
def diverted_pdf(request):
    pending = list(selectors.pending_diverted(request.customer))
    if not pending:
        raise Http404("Aucun courrier en attente.")
    content, missing = exports.merged_pdf(pending)
    response = HttpResponse(content, content_type="application/pdf")
    name = f"courrier-{request.customer.slug}-{timezone.localdate():%Y-%m-%d}.pdf"
    response["Content-Disposition"] = content_disposition_header(True, name)
    if missing:
        response["X-Documents-Manquants"] = ",".join(map(str, missing))
    return response


@require_POST
@customer_required
def mark_handled(request):
    ids = [int(value) for value in request.POST.getlist("dispatch") if value.isdigit()]
    count = selectors.mark_handled(request.customer, ids=ids, user=request.user)
    if count:
        messages.success(request, f"{count} document(s) marqué(s) comme traité(s).")
    else:
        messages.info(request, "Aucun document sélectionné n'était à traiter.")
    target = request.POST.get("next") or reverse("portal:diverted")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("portal:diverted")
    return redirect(target)


@customer_required
def pauses(request):
    """Pauses in force and ended ones; the form to suspend a debtor or an invoice."""
    if request.method == "POST":
        form = PauseForm(request.POST, customer=request.customer)
        if form.is_valid():
            pause = form.save(commit=False)
            pause.created_by = request.user.email or request.user.get_username()
            pause.save()
            messages.success(request, f"Relances suspendues pour {pause.pcf_code} ({pause.scope_label}) : "
                                      "elles ne partiront plus tant que la pause est en vigueur.")
            if not selectors.dispatches_for(request.customer).filter(pcf_code=pause.pcf_code).exists():
                messages.warning(request, f"Aucun envoi connu pour le code tiers « {pause.pcf_code} » : "
                                          "vérifiez qu'il s'agit bien du code du client dans Gestimum.")
            return redirect("portal:pauses")
    else:
        initial = {key: request.GET[key] for key in ("pcf_code", "doc_piece") if request.GET.get(key)}
        form = PauseForm(initial=initial, customer=request.customer)
    today = timezone.localdate()
    mine = ReminderPause.objects.filter(customer=request.customer)
    active = list(mine.active(today))
    ended = list(mine.exclude(pk__in=[pause.pk for pause in active])[:50])
    return render(request, "portal/pauses.html", {"form": form, "active": active, "ended": ended,
                                                  "nav": "pauses"})


@require_POST
@customer_required
def lift_pause(request, pk):
    try:
        pause = ReminderPause.objects.get(pk=pk, customer=request.customer)
    except ReminderPause.DoesNotExist:
        raise Http404("Pause introuvable.") from None
    if pause.lifted_at is None:
        pause.lift(by=request.user.email or request.user.get_username())
        messages.success(request, f"Pause levée pour {pause.pcf_code} ({pause.scope_label}) : les relances "
                                  "reprennent à la prochaine exécution des tâches.")
    return redirect("portal:pauses")


# Password reset: Django's views, French templates, names inside the portal namespace.
password_reset = auth_views.PasswordResetView.as_view(
    template_name="registration/password_reset_form.html",
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt",
    success_url=reverse_lazy("portal:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="registration/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="registration/password_reset_confirm.html",
    success_url=reverse_lazy("portal:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="registration/password_reset_complete.html")

