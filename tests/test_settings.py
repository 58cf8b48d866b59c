"""Settings read from the environment: strict in production, runnable with nothing set."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'debug': settings.DEBUG, 'db': settings.DATABASES['default']['ENGINE'], "
    "'email': settings.EMAIL_BACKEND, 'cache': settings.CACHES['default']['BACKEND'], "
    "'broker': 'redis' if 'redis' in settings.Q_CLUSTER else 'orm', 'tz': settings.TIME_ZONE, "
    "'lang': settings.LANGUAGE_CODE}))"
)
CLEARED = ("SECRET_KEY", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "EMAIL_BACKEND",
           "REDIS_URL", "REDIS_CACHE_URL", "EASYRELANCE_ENV", "DEBUG")


def probe(**env):
    environment = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environment.update(DJANGO_SETTINGS_MODULE="easyrelance.settings", **env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_a_fresh_checkout_runs_with_nothing_set():
    result = probe()
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["db"] == "django.db.backends.sqlite3"
    assert found["email"] == "relance.mail_backends.EmlFileBackend"
    assert (found["broker"], found["tz"], found["lang"]) == ("orm", "Europe/Paris", "fr")


def test_production_refuses_a_missing_secret_key():
    result = probe(EASYRELANCE_ENV="production", ALLOWED_HOSTS="relance.example")
    assert result.returncode != 0
    assert "SECRET_KEY est obligatoire en production" in result.stderr


def test_production_refuses_missing_allowed_hosts():
    result = probe(EASYRELANCE_ENV="production", SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEY="k" * 40)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS est obligatoire en production" in result.stderr


def test_an_unknown_environment_name_is_refused():
    result = probe(EASYRELANCE_ENV="prod")
    assert result.returncode != 0 and "EASYRELANCE_ENV='prod' est inconnu" in result.stderr


def test_production_starts_with_its_secrets():
    result = probe(EASYRELANCE_ENV="production", SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEY="k" * 40,
                   ALLOWED_HOSTS="relance.example", EMAIL_BACKEND="postmark")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["email"] == "anymail.backends.postmark.EmailBackend"


def test_redis_url_switches_the_broker_and_the_cache():
    result = probe(REDIS_URL="redis://127.0.0.1:6379/15")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["broker"] == "redis"
    assert found["cache"] == "django.core.cache.backends.redis.RedisCache"
