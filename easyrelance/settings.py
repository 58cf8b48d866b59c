"""EasyRelance settings, read from the environment (django-environ).

A fresh checkout runs with nothing set: SQLite app database, e-mails written as
.eml files under var/. Production (DEBUG off) refuses to start without the
secrets it needs instead of guessing them.
"""

from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# "development" (the default, so that a fresh checkout runs) or "production",
# which refuses to start without its secrets instead of inventing them.
ENVIRONMENT = env.str("EASYRELANCE_ENV", default="development")
if ENVIRONMENT not in ("development", "production"):
    raise ImproperlyConfigured(
        f"EASYRELANCE_ENV={ENVIRONMENT!r} est inconnu : utilisez 'development' ou 'production'."
    )
DEV_MODE = ENVIRONMENT == "development"
DEBUG = env.bool("DEBUG", default=False)


def _required_in_production(name, dev_default):
    value = env.str(name, default="")
    if value:
        return value
    if DEV_MODE:
        return dev_default
    raise ImproperlyConfigured(
        f"La variable d'environnement {name} est obligatoire en production "
        f"(EASYRELANCE_ENV=production). Définissez-la dans l'environnement ou dans .env."
    )


SECRET_KEY = _required_in_production("SECRET_KEY", "dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    if DEV_MODE:
        ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
    else:
        raise ImproperlyConfigured(
            "La variable ALLOWED_HOSTS est obligatoire en production "
            "(ex. ALLOWED_HOSTS=relance.e-doc-erp.fr)."
        )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Key that encrypts the Gestimum connection URLs at rest (Fernet, any string:
# it is stretched with SHA-256). Changing it makes stored URLs unreadable.
FIELD_ENCRYPTION_KEY = _required_in_production("FIELD_ENCRYPTION_KEY", SECRET_KEY)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "anymail",
    "relance",
    "relance.gestimum",
    "billing",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "easyrelance.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "easyrelance.wsgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'easyrelance.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Workers and the web process share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASE_ROUTERS = ["relance.gestimum.router.GestimumRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The portal logs customers in by e-mail; ModelBackend keeps the admin's user-name login.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "portal.backends.EmailBackend",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
# Portal login throttling (portal/throttle.py) counts failures in the default cache; Django's
# default LocMem cache is per process, so production should configure a shared cache (Redis).

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEV_MODE
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development WhiteNoise serves static files straight from the apps (no collectstatic);
# in production it serves STATIC_ROOT, filled by `manage.py collectstatic`.
WHITENOISE_USE_FINDERS = DEV_MODE
WHITENOISE_AUTOREFRESH = DEV_MODE
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Documents that cannot be e-mailed are written below this root, one folder
# per customer; a task's divert folder must stay inside it.
DIVERT_ROOT = Path(env.str("DIVERT_ROOT", default=str(VAR_DIR / "divert")))
# Existing invoice PDFs ("print model: archive") are only read below this root.
ARCHIVE_ROOT = Path(env.str("ARCHIVE_ROOT", default=str(VAR_DIR / "archive")))

# --- E-mail ---------------------------------------------------------------
# EMAIL_BACKEND picks the transport: "smtp", "file" (demo: .eml files),
# "console", "locmem", or an anymail ESP name ("brevo", "mailjet",
# "amazon_ses", "postmark", "mailgun", "sendgrid", ...). ESP credentials go
# in ANYMAIL_* variables, see README.
_EMAIL_BACKENDS = {
    # Django's SMTP backend, plus a signed VERP envelope sender per message (bounces).
    "smtp": "relance.mail_backends.VerpSMTPBackend",
    "file": "relance.mail_backends.EmlFileBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
_email_choice = env.str("EMAIL_BACKEND", default="file")
if _email_choice in _EMAIL_BACKENDS:
    EMAIL_BACKEND = _EMAIL_BACKENDS[_email_choice]
elif "." in _email_choice:
    EMAIL_BACKEND = _email_choice
else:
    EMAIL_BACKEND = f"anymail.backends.{_email_choice}.EmailBackend"
EMAIL_FILE_PATH = Path(env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "sent-mail")))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
ANYMAIL = {
    key[len("ANYMAIL_"):]: value
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_")
}
# Amazon SES webhooks: refuse SNS posts whose AWS signature does not verify
# (relance/sns.py). Turn off only to debug, never in production.
AMAZON_SES_VERIFY_SNS_SIGNATURE = env.bool("AMAZON_SES_VERIFY_SNS_SIGNATURE", default=True)
# The SNS topics (ARNs, comma-separated) whose notifications the SES webhook accepts; empty: any
# topic that passes basic auth and the signature check.
AMAZON_SES_SNS_TOPIC_ARNS = env.list("AMAZON_SES_SNS_TOPIC_ARNS", default=[])
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="EasyRelance <noreply@e-doc-erp.fr>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Customers send from <slug>@PLATFORM_MAIL_DOMAIN until their own domain's SPF is verified.
PLATFORM_MAIL_DOMAIN = env.str("PLATFORM_MAIL_DOMAIN", default="e-doc-erp.fr")
# Plain SMTP sends use bounce+<signed id>@BOUNCE_DOMAIN as envelope sender; its
# mailbox is read by "manage.py fetch_bounces" (see README, "Suivi de délivrance").
BOUNCE_DOMAIN = env.str("BOUNCE_DOMAIN", default=f"bounce.{PLATFORM_MAIL_DOMAIN}")
# Temporary send failures (4xx, connection) are retried this many times, waiting
# SEND_RETRY_BASE_DELAY * 4**attempt seconds between tries.
SEND_RETRY_ATTEMPTS = env.int("SEND_RETRY_ATTEMPTS", default=3)
SEND_RETRY_BASE_DELAY = env.float("SEND_RETRY_BASE_DELAY", default=2.0)

# --- Gestimum ---------------------------------------------------------------
# What gestimum-schema.md marks as a guess is a setting, with the guess as default.
GESTIMUM = {
    # Counter names given to G2GETNEWNUMERO for new identifiers.
    "COUNTER_ACTIONS": env.str("GESTIMUM_COUNTER_ACTIONS", default="N_ACT"),
    "COUNTER_RELANCES": env.str("GESTIMUM_COUNTER_RELANCES", default="N_REL"),
    # User name written in *_USRMAJ / ACT_USRCRE.
    "USER": env.str("GESTIMUM_USER", default="EASYREL"),
    # ACTIONS.ACT_TYPE of the rows EasyRelance writes.
    "ACTION_TYPE": env.str("GESTIMUM_ACTION_TYPE", default="RELANCE"),
    # DOC_STYPE of credit notes: never reminded.
    "CREDIT_NOTE_STYPE": env.str("GESTIMUM_CREDIT_NOTE_STYPE", default="A"),
    # Échéances are read in pages of this many rows.
    "PAGE_SIZE": env.int("GESTIMUM_PAGE_SIZE", default=1000),
}

# Late-payment law (Code de commerce L441-10, D441-5), used in reminder texts.
LATE_PAYMENT_ECB_RATE = Decimal(env.str("LATE_PAYMENT_ECB_RATE", default="2.15"))
LATE_PAYMENT_MARGIN_POINTS = Decimal(env.str("LATE_PAYMENT_MARGIN_POINTS", default="10"))
RECOVERY_INDEMNITY = Decimal(env.str("RECOVERY_INDEMNITY", default="40.00"))

# --- django-q2 ------------------------------------------------------------
Q_CLUSTER = {
    # One shared name for every cluster (they read each other's queue payloads);
    # an on-premise worker picks its own cluster with Q_CLUSTER_NAME, which
    # django-q2 reads itself (and then requires ALT_CLUSTERS to exist, even empty).
    "name": "easyrelance",
    "ALT_CLUSTERS": {},
    # Seconds between two checks of the worker pool; the scheduler runs every
    # 30 s of these, first at the check that reaches 30 (Q_GUARD_CYCLE=30: at start).
    "guard_cycle": env.float("Q_GUARD_CYCLE", default=0.5),
    "workers": env.int("Q_WORKERS", default=2),
    # A run of a large task may take long: never kill it half-way. "retry"
    # must stay above "timeout" or django-q hands the task to a second worker.
    "timeout": env.int("Q_TIMEOUT", default=3 * 3600),
    "retry": env.int("Q_RETRY", default=3 * 3600 + 600),
    "max_attempts": 1,
    "catch_up": False,
    "label": "Files d'attente",
    "orm": "default",
}
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# The cache holds the portal's login-failure counters: with several web
# processes they must share one store, Redis when REDIS_CACHE_URL (or REDIS_URL) is set.
REDIS_CACHE_URL = env.str("REDIS_CACHE_URL", default=REDIS_URL)
if REDIS_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_CACHE_URL, "KEY_PREFIX": "easyrelance"}}
if env.bool("Q_SYNC", default=False):
    Q_CLUSTER["sync"] = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "xhtml2pdf": {"level": "ERROR"},
        "fontTools": {"level": "ERROR"},
        "mail.log": {"level": "WARNING"},
    },
}

if not DEV_MODE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
