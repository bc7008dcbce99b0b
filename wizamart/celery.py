"""The Celery application. Queues: default, imports, emails, reports (see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wizamart.settings")

app = Celery("wizamart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
