"""Documents that cannot be e-mailed go to a folder, for postal mail or manual handling.

Each diverted document is a PDF in the task's divert folder plus a line in
``manifeste.csv`` (semicolon-separated, UTF-8 with BOM so Excel opens it) with
the postal address and the reason.
"""

import csv
import os
import re
from pathlib import Path

from django.utils import timezone

from .formatting import date_fr, number
from .paths import resolve_inside

MANIFEST_NAME = "manifeste.csv"
MANIFEST_HEADER = [
    "Date", "Niveau", "Tiers", "Code tiers", "Pièce", "Échéance", "Reste dû", "Adresse postale",
    "Motif", "Fichier",
]


def divert_folder(customer, task):
    """The task's divert folder, created, guaranteed inside the customer's divert root."""
    folder = resolve_inside(customer.divert_root, task.divert_folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _safe(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "document"


def divert(*, customer, task, candidate, pdf, filename, reason, remaining):
    """Write the PDF and its manifest line; return the PDF's path."""
    folder = divert_folder(customer, task)
    stem = _safe(Path(filename).stem)
    target = folder / f"{stem}_N{task.level}_{_safe(candidate.echeance.numero)}.pdf"
    temporary = target.with_suffix(".pdf.tmp")
    temporary.write_bytes(pdf)
    os.replace(temporary, target)  # never a half-written PDF under the final name
    append_manifest_line(folder, [
        timezone.localtime().strftime("%d/%m/%Y %H:%M"),
        task.level,
        candidate.tiers.name,
        candidate.tiers.code,
        candidate.echeance.piece,
        date_fr(candidate.echeance.due_date),
        number(remaining),
        " / ".join(candidate.tiers.postal_lines or candidate.document.billing_lines
                   if candidate.document else candidate.tiers.postal_lines),
        reason,
        target.name,
    ])
    return target


def append_manifest_line(folder, line):
    """Add one line (MANIFEST_HEADER's columns) to the folder's manifest, created with its header
    and a BOM the first time."""
    manifest = folder / MANIFEST_NAME
    new = not manifest.exists()
    with manifest.open("a", newline="", encoding="utf-8-sig" if new else "utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        if new:
            writer.writerow(MANIFEST_HEADER)
        writer.writerow(line)
