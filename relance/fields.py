"""A text field encrypted at rest (Fernet), for secrets such as Gestimum connection URLs."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


def _fernet():
    key = hashlib.sha256(settings.FIELD_ENCRYPTION_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value):
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def decrypt(value):
    if not value.startswith(PREFIX):
        return value
    try:
        return _fernet().decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "Impossible de déchiffrer une valeur stockée : FIELD_ENCRYPTION_KEY a-t-elle changé ?"
        ) from exc


class EncryptedTextField(models.TextField):
    """Stored as ``fernet:<token>``; Python code only ever sees the clear text."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "" or value.startswith(PREFIX):
            return value
        return encrypt(value)
