"""Platform admin of Letzshop: accounts (test connection, sync now, historical import with
a progress bar), order exceptions, the per-unit confirmation page, logs and tasks.

Every change goes through `imports.letzshop.services`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from imports.letzshop import selectors, services
from imports.letzshop.client import LetzshopError
from imports.letzshop.models import (
    FulfilmentTask,
    HistoricalImport,
    LetzshopAccount,
    OrderException,
    RejectedShipment,
    SyncLog,
)
from marketplace.models import Order
from marketplace.services import DomainError


def _units_url(order: Order) -> str:
    return reverse("admin:letzshop_order_units", args=[order.public_id])


class LetzshopAccountForm(forms.ModelForm):
    endpoint = forms.URLField(
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text="Empty: the LETZSHOP_ENDPOINT setting.",
    )
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )

    class Meta:
        model = LetzshopAccount
        fields = ["store", "api_key", "endpoint", "vendor_id", "auto_sync", "interval_minutes"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("api_key"):
            self.add_error("api_key", "An API key is required.")
        return cleaned


@admin.register(LetzshopAccount)
class LetzshopAccountAdmin(admin.ModelAdmin):
    form = LetzshopAccountForm
    change_form_template = "letzshop/admin/account_change_form.html"
    list_display = [
        "store",
        "vendor_id",
        "auto_sync",
        "interval_minutes",
        "status",
        "last_synced_at",
    ]
    list_filter = ["status", "auto_sync"]
    readonly_fields = ["status", "last_synced_at", "last_attempt_at", "last_error"]
    actions = ["test_connection", "sync_now", "start_historical_import"]

    def save_model(self, request, obj, form, change):
        api_key = form.cleaned_data.get("api_key")
        data = {
            k: form.cleaned_data[k]
            for k in ("endpoint", "vendor_id", "auto_sync", "interval_minutes")
        }
        if not change:
            saved = services.connect_account(obj.store, api_key=api_key, **data)
            obj.pk = saved.pk
            return
        LetzshopAccount.objects.filter(pk=obj.pk).update(**data)
        if api_key:
            services.set_api_key(obj, api_key)

    @admin.action(description="Test connection (viewer { vendors })")
    def test_connection(self, request, queryset):
        for account in queryset.select_related("store"):
            try:
                vendors = services.test_connection(account)
            except LetzshopError as exc:
                self.message_user(request, f"{account.store}: {exc}", messages.ERROR)
            else:
                names = ", ".join(f"{v['name']} ({v['id']})" for v in vendors)
                self.message_user(
                    request, f"{account.store}: OK, vendors {names}", messages.SUCCESS
                )

    @admin.action(description="Sync unconfirmed orders now")
    def sync_now(self, request, queryset):
        for account in queryset.select_related("store"):
            result = services.sync_account(account)
            if result.skipped:
                self.message_user(
                    request, f"{account.store}: a sync is already running.", messages.WARNING
                )
            elif result.error:
                self.message_user(request, f"{account.store}: {result.error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{account.store}: {result.seen} shipments read, {result.created} orders created.",
                    messages.SUCCESS,
                )

    @admin.action(description="Run a historical import (confirmed and unconfirmed)")
    def start_historical_import(self, request, queryset):
        for account in queryset:
            services.start_historical_import(account)
        self.message_user(request, "Historical import queued; progress shows on the account page.")

    def get_urls(self):
        return [
            path(
                "<int:pk>/import-progress/",
                self.admin_site.admin_view(self.import_progress_view),
                name="letzshop_import_progress",
            ),
            path(
                "<int:pk>/historical-import/",
                self.admin_site.admin_view(self.historical_import_view),
                name="letzshop_historical_import",
            ),
            path(
                "order/<uuid:public_id>/units/",
                self.admin_site.admin_view(self.order_units_view),
                name="letzshop_order_units",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        account = self.get_object(request, object_id)
        if account is not None:
            extra_context["latest_import"] = account.historical_imports.first()
            extra_context["letzshop_orders"] = [
                (order, _units_url(order))
                for order in Order.objects.filter(
                    store=account.store, channel=Order.Channel.LETZSHOP
                )[:20]
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def import_progress_view(self, request, pk):
        account = get_object_or_404(LetzshopAccount, pk=pk)
        latest = account.historical_imports.first()
        return JsonResponse(selectors.import_progress(latest) if latest else {"status": "none"})

    def historical_import_view(self, request, pk):
        account = get_object_or_404(LetzshopAccount, pk=pk)
        if request.method == "POST" and self.has_change_permission(request, account):
            services.start_historical_import(account)
            self.message_user(request, "Historical import queued.")
        return redirect("admin:letzshop_letzshopaccount_change", pk)

    def order_units_view(self, request, public_id):
        order = get_object_or_404(
            Order.objects.select_related("store"),
            public_id=public_id,
            channel=Order.Channel.LETZSHOP,
        )
        if request.method == "POST":
            if not self.has_change_permission(request):
                return redirect(request.path)
            try:
                if request.POST.get("action") == "tracking":
                    services.set_tracking(
                        order,
                        code=request.POST.get("code", ""),
                        provider=request.POST.get("provider", ""),
                        actor=request.user,
                    )
                    self.message_user(request, "Tracking saved and queued for Letzshop.")
                else:
                    decisions = {}
                    for key, value in request.POST.items():
                        if key.startswith("unit:") and value in ("confirm", "decline"):
                            decisions[key.removeprefix("unit:")] = value == "confirm"
                    tasks = services.decide_units(order, decisions, actor=request.user)
                    self.message_user(request, f"{len(tasks)} call(s) to Letzshop queued.")
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Letzshop units of order {order.number}",
            "order": order,
            "units": selectors.order_units(order),
            "exceptions": OrderException.objects.filter(order=order),
            "tasks": selectors.order_tasks(order),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "letzshop/admin/order_units.html", context)


class OrderExceptionForm(forms.ModelForm):
    class Meta:
        model = OrderException
        fields = ["resolved_product"]


@admin.register(OrderException)
class OrderExceptionAdmin(admin.ModelAdmin):
    form = OrderExceptionForm
    list_display = ["order", "kind", "gtin", "sku", "title", "status", "units_link", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["gtin", "sku", "title", "order__number"]
    raw_id_fields = ["resolved_product"]
    readonly_fields = [
        "order",
        "order_line",
        "kind",
        "gtin",
        "sku",
        "title",
        "status",
        "resolved_by",
        "resolved_at",
    ]
    actions = ["ignore", "resolve_from_catalogue"]

    @admin.display(description="Units")
    def units_link(self, obj):
        return format_html('<a href="{}">confirm / decline</a>', _units_url(obj.order))

    def save_model(self, request, obj, form, change):
        product = form.cleaned_data.get("resolved_product")
        if product is not None:
            try:
                services.resolve_exception(obj, product, actor=request.user)
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Ignore (confirm the order without a product)")
    def ignore(self, request, queryset):
        count = sum(services.ignore_exception(e, actor=request.user) for e in queryset)
        self.message_user(request, f"{count} exception(s) ignored.")

    @admin.action(description="Resolve from the catalogue (GTIN/SKU now imported)")
    def resolve_from_catalogue(self, request, queryset):
        stores = {e.order.store for e in queryset.select_related("order__store")}
        count = sum(services.resolve_exceptions_for_store(store) for store in stores)
        self.message_user(request, f"{count} exception(s) resolved.")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "operation",
        "outcome",
        "http_status",
        "duration_ms",
        "request_summary",
    ]
    list_filter = ["outcome", "operation"]
    list_select_related = ["account__store"]


@admin.register(RejectedShipment)
class RejectedShipmentAdmin(ReadOnlyAdmin):
    """Shipments the sync could not import (deleted once one imports)."""

    list_display = [
        "last_seen_at", "account", "number", "external_id", "field", "reason", "times_seen"
    ]  # fmt: skip
    list_select_related = ["account__store"]
    search_fields = ["number", "external_id", "account__store__code"]


@admin.register(FulfilmentTask)
class FulfilmentTaskAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "order",
        "kind",
        "status",
        "attempts",
        "http_status",
        "last_error",
        "next_attempt_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["order"]


@admin.register(HistoricalImport)
class HistoricalImportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "status",
        "shipments_seen",
        "shipments_total",
        "shipments_created",
        "pages_done",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]
