"""Login throttling: after too many failures for one (e-mail, IP) pair, refuse for a while.

Counters live in Django's default cache. The default LocMem cache is per
process: with several web workers, each counts on its own, so production
should point CACHES at Redis (REDIS_URL) for one shared counter.
"""

import hashlib

from django.core.cache import cache

MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
LOCKED_MESSAGE = (
    "Trop de tentatives de connexion échouées. Par sécurité, la connexion est bloquée "
    "pendant 15 minutes pour cette adresse. Vous pouvez aussi réinitialiser votre mot de passe."
)


def client_ip(request):
    # REMOTE_ADDR only: X-Forwarded-For can be forged by the client unless a known proxy sets it.
    return (request.META.get("REMOTE_ADDR") or "") if request is not None else ""


def _key(email, ip):
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()
    return f"portal:login-failures:{digest}"


def is_locked(email, ip):
    return cache.get(_key(email, ip), 0) >= MAX_FAILURES


def record_failure(email, ip):
    """Count one failure; each failure restarts the 15 minutes."""
    key = _key(email, ip)
    failures = cache.get(key, 0) + 1
    cache.set(key, failures, LOCK_SECONDS)
    return failures


def reset(email, ip):
    cache.delete(_key(email, ip))
