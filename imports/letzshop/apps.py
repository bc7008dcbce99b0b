from django.apps import AppConfig


class LetzshopConfig(AppConfig):
    name = "imports.letzshop"
    label = "letzshop"
    verbose_name = "Letzshop"
    default_auto_field = "django.db.models.BigAutoField"
