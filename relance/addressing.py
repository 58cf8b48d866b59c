"""Who receives a reminder: the task's ordered recipient chain, CC and BCC.

The first source of the chain that yields at least one valid address wins;
several addresses may be separated by ';'. Invalid addresses are reported so
that a document is diverted with the reason, never mailed to garbage.
"""

from dataclasses import dataclass, field

from .mailer import split_addresses
from .models import AddressSource

Kind = AddressSource.Kind


@dataclass(frozen=True)
class SourceSpec:
    role: str
    kind: str
    value: str = ""


@dataclass
class Recipients:
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)

    @property
    def divert_reason(self):
        if self.to:
            return ""
        if self.suppressed:
            return "Adresse en échec définitif (rejet) : " + ", ".join(self.suppressed)
        if self.invalid:
            return "Adresse e-mail invalide : " + ", ".join(self.invalid)
        return "Aucune adresse e-mail"


def default_sources():
    return [SourceSpec(role=AddressSource.Role.TO, kind=Kind.BILLING_EMAIL)]


def address_columns(sources):
    """(TABLE, COLUMN) pairs whose values the gateway must read for these sources."""
    pairs = []
    for source in sources:
        if source.kind == Kind.TIERS_COLUMN:
            pairs.append(("TIERS", source.value.upper()))
        elif source.kind == Kind.DOCUMENT_COLUMN:
            pairs.append(("DOCUMENTS", source.value.upper()))
    return tuple(dict.fromkeys(pairs))


def _raw_addresses(source, candidate):
    value = source.value.strip()
    if source.kind == Kind.BILLING_EMAIL:
        return [candidate.tiers.email]
    if source.kind == Kind.CONTACT_FUNCTION:
        return [c.email for c in candidate.contacts if c.function.upper() == value.upper()]
    if source.kind == Kind.CONTACT_QUALIFIER:
        return [c.email for c in candidate.contacts
                if value.upper() in (q.upper() for q in c.qualifiers)]
    if source.kind == Kind.TIERS_COLUMN:
        return [candidate.columns.get(("TIERS", value.upper())) or ""]
    if source.kind == Kind.DOCUMENT_COLUMN:
        return [candidate.columns.get(("DOCUMENTS", value.upper())) or ""]
    if source.kind == Kind.REPRESENTATIVE:
        return [candidate.representative_email]
    if source.kind == Kind.STATIC:
        return [value]
    raise ValueError(f"Unknown address source {source.kind!r}")


def _addresses(source, candidate):
    return split_addresses(";".join(a for a in _raw_addresses(source, candidate) if a))


def resolve(sources, candidate, *, suppressed=frozenset()):
    """Recipients of one candidate. ``suppressed``: lower-case addresses never to mail."""
    result = Recipients()
    to_sources = [s for s in sources if s.role == AddressSource.Role.TO] or default_sources()
    for source in to_sources:
        valid, invalid = _addresses(source, candidate)
        result.invalid.extend(invalid)
        result.suppressed.extend(a for a in valid if a.lower() in suppressed)
        valid = [a for a in valid if a.lower() not in suppressed]
        if valid:
            result.to = valid
            result.invalid = []
            result.suppressed = []
            break
    if not result.to:
        return result
    taken = {a.lower() for a in result.to}
    for role, target in ((AddressSource.Role.CC, result.cc), (AddressSource.Role.BCC, result.bcc)):
        for source in sources:
            if source.role != role:
                continue
            for address in _addresses(source, candidate)[0]:
                if address.lower() not in taken and address.lower() not in suppressed:
                    taken.add(address.lower())
                    target.append(address)
    return result
