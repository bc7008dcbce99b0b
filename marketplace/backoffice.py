"""The store back office at `/store/`: a second admin site for each store's own team.

Who gets in: an active user with at least one Membership (platform staff use `/admin/`).
What they see: only the rows of their stores, in every list, page, form choice and action;
anything else is a 404, as if it did not exist. What they may do depends on their role in
the row's store:

| role    | products        | stock adjust | orders, Letzshop units, exceptions | customers | imports, feeds, Letzshop account | feed token rotate | team |
|---------|-----------------|--------------|------------------------------------|-----------|----------------------------------|-------------------|------|
| owner   | view, add, edit | yes          | yes                                | view      | yes                              | yes               | yes  |
| manager | view, add, edit | yes          | yes                                | view      | yes                              | no                | no   |
| staff   | view            | yes          | yes                                | no        | no                               | no                | no   |

Every write goes through the services of its app (`marketplace.services`,
`imports.services`, `imports.letzshop.services`); refusals (DomainError, LetzshopError)
become messages.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from imports.letzshop import admin as letzshop_admin
from imports.letzshop import selectors as letzshop_selectors
from imports.letzshop import services as letzshop_services
from imports.letzshop.client import LetzshopError
from imports.letzshop.models import LetzshopAccount, OrderException, SyncLog
from imports.models import ImportJob
from imports.services import feed_export_token, rotate_feed_export_token
from imports.views import (
    FeedUploadForm,
    feed_response,
    progress_context,
    progress_response,
    rejected_lines_context,
    rejected_lines_response,
    start_import,
)
from marketplace import admin as platform_admin
from marketplace import selectors, services
from marketplace.admin import ProductAdminMixin
from marketplace.models import (
    LANGUAGE_CODES,
    Customer,
    Invitation,
    Language,
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Shipment,
    StockMovement,
    Store,
)
from notifications.services import address_lines

Role = Membership.Role
ALL_ROLES = frozenset(Role.values)
MANAGERS = frozenset({Role.OWNER, Role.MANAGER})
OWNERS = frozenset({Role.OWNER})


def store_roles(request) -> dict[int, str]:
    """{store id: role} of the signed-in user, read once per request (with the stores'
    names, for `store_names`)."""
    if not hasattr(request, "_backoffice_roles"):
        user = request.user
        rows = (
            Membership.objects.filter(user=user, store__is_active=True).values_list(
                "store_id", "role", "store__name"
            )
            if user.is_authenticated and user.is_active
            else []
        )
        request._backoffice_roles = {store_id: role for store_id, role, _name in rows}
        request._backoffice_store_names = {store_id: name for store_id, _role, name in rows}
    return request._backoffice_roles


def store_names(request) -> dict[int, str]:
    """{store id: name} of the signed-in user's stores; no query of its own."""
    store_roles(request)
    return request._backoffice_store_names


def stores_with(request, roles) -> list[int]:
    return sorted(store_id for store_id, role in store_roles(request).items() if role in roles)


def own_store(request, code: str, roles) -> Store:
    """The signed-in user's store `code`: 404 when it is not one of their stores, 403 when
    their role there is not in `roles`."""
    roles_by_store = store_roles(request)
    store = get_object_or_404(Store, code=code, pk__in=list(roles_by_store))
    if roles_by_store[store.pk] not in roles:
        raise PermissionDenied
    return store


class BackOfficeAuthenticationForm(AuthenticationForm):
    """The admin's login form without the is_staff rule: a store membership is needed."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "no_store": _("This account is not part of a store's team."),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not Membership.objects.filter(user=user, store__is_active=True).exists():
            raise ValidationError(self.error_messages["no_store"], code="no_store")


class BackOfficeSite(admin.AdminSite):
    site_header = _("Wizamart store back office")
    site_title = _("Store back office")
    index_title = _("Dashboard")
    login_form = BackOfficeAuthenticationForm
    index_template = "backoffice/index.html"
    app_index_template = "backoffice/app_index.html"
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        return bool(store_roles(request))

    def each_context(self, request):
        context = super().each_context(request)
        names = list(store_names(request).values())
        if len(names) == 1:
            header = gettext("%(store)s back office") % {"store": names[0]}
            context.update(site_header=header, site_title=header)
        return context

    def get_urls(self):
        return [
            path("feeds/", self.admin_view(feed_exports_view), name="feed_exports"),
            path(
                "feeds/<slug:store_code>/<str:language>.tsv",
                self.admin_view(feed_download_view),
                name="feed_download",
            ),
            path(
                "feeds/<slug:store_code>/rotate-token/",
                self.admin_view(require_POST(rotate_feed_token_view)),
                name="feed_token_rotate",
            ),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        store_ids = stores_with(request, ALL_ROLES)
        stores = list(Store.objects.filter(pk__in=store_ids).order_by("name"))
        chosen = request.GET.get("store", "")
        shown = [store for store in stores if store.code == chosen] or stores
        dashboard = selectors.store_dashboard([store.pk for store in shown])
        context = {
            "stores": stores,
            "shown_stores": shown,
            "chosen_store": chosen if len(shown) == 1 and len(stores) > 1 else "",
            "dashboard": dashboard,
            "chart": order_chart(dashboard.days),
            "low_stock_threshold": selectors.LOW_STOCK_THRESHOLD,
            "can_export_feeds": bool(stores_with(request, MANAGERS)),
            "can_import": bool(stores_with(request, ImportJobAdmin.add_roles)),
            **(extra_context or {}),
        }
        return super().index(request, context)


CHART_LABEL_EVERY = 5
CHART_LABEL_HALF_WIDTH = 20  # half of "30 Nov" at the chart's font size, in viewBox units


def order_chart(days, *, width: int = 900, height: int = 160) -> dict:
    """Bar geometry for the orders-per-day SVG drawn by the index template.

    Every CHART_LABEL_EVERY-th day is labelled, counting back from the last one (today),
    so labels never touch; a label near an edge is anchored to stay inside the viewBox.
    """
    top = max((day.orders for day in days), default=0) or 1
    slot = width / max(len(days), 1)
    plot = height - 24
    last = len(days) - 1
    bars = []
    for index, day in enumerate(days):
        bar_height = round(plot * day.orders / top, 1)
        label_x, anchor = index * slot + slot / 2, "middle"
        if label_x + CHART_LABEL_HALF_WIDTH > width:
            label_x, anchor = width, "end"
        elif label_x - CHART_LABEL_HALF_WIDTH < 0:
            label_x, anchor = 0, "start"
        bars.append(
            {
                "x": round(index * slot + 1, 1),
                "y": round(plot - bar_height, 1),
                "width": round(slot - 2, 1),
                "height": bar_height,
                "day": day.day,
                "orders": day.orders,
                "revenue": day.revenue,
                "label": (last - index) % CHART_LABEL_EVERY == 0,
                "label_x": round(label_x, 1),
                "label_anchor": anchor,
            }
        )
    return {"width": width, "height": height, "plot": plot, "bars": bars, "top": top}


site = BackOfficeSite(name="backoffice")


# --- the scoping every page shares --------------------------------------------------------


class StoreFilter(admin.SimpleListFilter):
    title = _("store")
    parameter_name = "store"

    def lookups(self, request, model_admin):
        ids = stores_with(request, model_admin.view_roles)
        return list(Store.objects.filter(pk__in=ids).values_list("code", "name"))

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.model_admin_store_path}__code": self.value()})
        return queryset


class StoreScopedAdmin(admin.ModelAdmin):
    """Rows of the user's stores only, rights by role in the row's store.

    `store_path` is the lookup from the model to its Store. Objects outside the user's
    stores are 404 on every page (change, history, delete, custom views); an action POST
    naming any of them is refused whole (403).
    """

    store_path = "store"
    view_roles: frozenset[str] = ALL_ROLES
    add_roles: frozenset[str] = frozenset()
    change_roles: frozenset[str] = frozenset()
    delete_roles: frozenset[str] = frozenset()
    show_full_result_count = False

    # --- scope
    def get_queryset(self, request):
        ids = stores_with(request, self.view_roles)
        return super().get_queryset(request).filter(**{f"{self.store_path}__in": ids})

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(gettext("Not found."))
        return obj

    def store_id_of(self, obj) -> int:
        value = obj
        for part in self.store_path.split("__"):
            value = getattr(value, part)
        return value.pk

    def role_for(self, request, obj) -> str | None:
        return store_roles(request).get(self.store_id_of(obj))

    def _allowed(self, request, roles, obj=None) -> bool:
        if obj is None:
            return bool(stores_with(request, roles))
        return self.role_for(request, obj) in roles

    # --- rights
    def has_module_permission(self, request):
        return self._allowed(request, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, self.view_roles, obj)

    def has_add_permission(self, request):
        return self._allowed(request, self.add_roles)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, self.change_roles, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, self.delete_roles, obj)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if len(stores_with(request, self.view_roles)) > 1:
            store_filter = type(
                "ScopedStoreFilter", (StoreFilter,), {"model_admin_store_path": self.store_path}
            )
            filters.append(store_filter)
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Store:
            ids = stores_with(request, self.add_roles | self.change_roles)
            kwargs["queryset"] = Store.objects.filter(pk__in=ids)
            if len(ids) == 1:
                kwargs["initial"] = ids[0]
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def response_action(self, request, queryset):
        # Django quietly drops selected ids outside the queryset; a guessed id is refused.
        if request.POST.get("select_across") != "1":
            selected = set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
            try:
                visible = {
                    str(pk)
                    for pk in self.get_queryset(request)
                    .filter(pk__in=selected)
                    .values_list("pk", flat=True)
                }
            except (ValueError, ValidationError):
                raise PermissionDenied from None
            if selected - visible:
                raise PermissionDenied
        return super().response_action(request, queryset)

    # Every role may run the order and stock work of its stores.
    def has_fulfil_permission(self, request, obj=None):
        return self._allowed(request, ALL_ROLES, obj)


class ReadOnlyInline(platform_admin.ReadOnlyInline):
    template = "backoffice/readonly_tabular.html"
    can_delete = False

    def has_view_permission(self, request, obj=None):
        # Shown inside pages the team may already see: no model permission of its own.
        return True


# --- products and stock -------------------------------------------------------------------


class StockAdjustForm(forms.Form):
    MODES = [("add", _("Add units (negative to remove)")), ("set", _("Set units on hand to"))]
    mode = forms.ChoiceField(choices=MODES, initial="add", widget=forms.RadioSelect)
    units = forms.IntegerField(min_value=-100000, max_value=100000)
    note = forms.CharField(max_length=200, required=False)

    def clean(self):
        data = super().clean()
        if data.get("mode") == "set" and (data.get("units") or 0) < 0:
            self.add_error("units", gettext("Stock on hand cannot be negative."))
        return data


class ProductTranslationInline(platform_admin.ProductTranslationInline):
    """The platform's inline, editable by the store's managers only."""

    def _can_edit(self, request, obj):
        ids = stores_with(request, MANAGERS)
        return obj.store_id in ids if obj is not None else bool(ids)

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return self._can_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._can_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Product, site=site)
class ProductAdmin(ProductAdminMixin, StoreScopedAdmin):
    add_roles = MANAGERS
    change_roles = MANAGERS
    list_display = ["sku", "title", "brand", "price", "on_hand", "reserved", "available"]
    list_display_links = ["sku", "title"]
    list_filter = ["is_active", "availability"]
    list_select_related = ["stock", "store"]
    search_fields = ["sku", "gtin", "brand", "translations__title"]
    inlines = [ProductTranslationInline]
    actions = ["adjust_stock"]
    fields = [
        "store",
        "sku",
        ("gtin", "gtin_type"),
        ("brand", "mpn"),
        ("price", "sale_price", "vat_rate"),
        ("condition", "availability", "is_active"),
        "product_type",
        "link",
        "image_url",
        "stock_summary",
    ]
    readonly_fields = ["stock_summary"]

    @admin.display(description=_("stock"))
    def stock_summary(self, product):
        stock = self._stock(product)
        if stock is None:
            return "-"
        url = reverse("backoffice:marketplace_stockmovement_changelist")
        return format_html(
            '{} on hand, {} reserved, {} available. <a href="{}?q={}">Movements</a>',
            stock.on_hand,
            stock.reserved,
            stock.available,
            url,
            product.sku,
        )

    @admin.action(description=_("Adjust stock of selected products"), permissions=["fulfil"])
    def adjust_stock(self, request, queryset):
        form = StockAdjustForm(request.POST if "apply" in request.POST else None)
        products = list(queryset.select_related("stock").order_by("pk"))
        if form.is_valid():
            mode, units = form.cleaned_data["mode"], form.cleaned_data["units"]
            note = form.cleaned_data["note"]
            try:
                with transaction.atomic():
                    changed = 0
                    for product in products:
                        if mode == "set":
                            changed += services.set_stock_on_hand(
                                product, units, actor=request.user, note=note
                            )
                        else:
                            changed += services.add_stock_on_hand(
                                product, units, actor=request.user, note=note
                            )
            except services.DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.message_user(
                request,
                ngettext(
                    "Stock changed for %(count)d product.",
                    "Stock changed for %(count)d products.",
                    changed,
                )
                % {"count": changed},
                messages.SUCCESS,
            )
            return None
        return render(
            request,
            "backoffice/stock_adjust.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Adjust stock"),
                "opts": self.opts,
                "form": form,
                "products": products,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(StockMovement, site=site)
class StockMovementAdmin(StoreScopedAdmin):
    store_path = "product__store"
    list_display = platform_admin.StockMovementAdmin.list_display
    list_filter = ["kind"]
    list_select_related = platform_admin.StockMovementAdmin.list_select_related
    search_fields = platform_admin.StockMovementAdmin.search_fields
    date_hierarchy = "created_at"


# --- orders -------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = [
        "sku",
        "title",
        "quantity",
        "quantity_shipped",
        "unit_price",
        "vat_rate",
        "line_total",
    ]
    readonly_fields = fields


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = ["created_at", "carrier", "tracking", "units", "created_by"]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .prefetch_related("lines__order_line")
        )

    @admin.display(description=_("tracking"))
    def tracking(self, shipment):
        if shipment.tracking_url:
            return format_html(
                '<a href="{}" rel="noopener">{}</a>',
                shipment.tracking_url,
                shipment.tracking_number,
            )
        return shipment.tracking_number

    @admin.display(description=_("units"))
    def units(self, shipment):
        return ", ".join(
            f"{line.quantity} x {line.order_line.sku or line.order_line.title}"
            for line in shipment.lines.all()
        )


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "change", "by", "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("change"))
    def change(self, event):
        """Reads "Created → Pending", "Pending → Processing"."""
        label = dict(Order.Status.choices)
        to = label.get(event.to_status, event.to_status)
        if not event.from_status:
            return gettext("Created → %(status)s") % {"status": to}
        return f"{label.get(event.from_status, event.from_status)} → {to}"

    @admin.display(description=_("by"))
    def by(self, event):
        if event.actor is None:
            return gettext("System")
        return event.actor.get_full_name() or event.actor.get_username()


class ShipLinesForm(forms.Form):
    carrier = forms.ChoiceField(choices=[("", "---------"), *Shipment.Carrier.choices])
    tracking_number = forms.CharField(max_length=100)
    tracking_url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = [line for line in lines if line.quantity_left > 0]
        for line in self.lines:
            left = line.quantity_left
            self.fields[f"line_{line.pk}"] = forms.IntegerField(
                label=f"{line.sku} {line.title}".strip(),
                min_value=0,
                max_value=left,
                initial=left,
                help_text=gettext("%(left)d left to ship") % {"left": left},
            )

    def line_fields(self):
        return [(line, self[f"line_{line.pk}"]) for line in self.lines]

    def quantities(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.lines}


class UnitDecisionsForm(forms.Form):
    """One choice per undecided Letzshop inventory unit of an order: confirm or decline."""

    CHOICES = [("", _("Later")), ("confirm", _("Confirm")), ("decline", _("Decline"))]

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = units
        for unit in units:
            if unit.state == unit.State.UNCONFIRMED:
                self.fields[f"unit:{unit.external_id}"] = forms.ChoiceField(
                    label=unit.external_id,
                    choices=self.CHOICES,
                    required=False,
                    initial="",
                    widget=forms.RadioSelect,
                )

    def rows(self):
        """(unit, its bound field or None when already decided), in the units' order."""
        rows = []
        for unit in self.units:
            name = f"unit:{unit.external_id}"
            rows.append((unit, self[name] if name in self.fields else None))
        return rows

    def decisions(self) -> dict[str, bool]:
        return {
            name.removeprefix("unit:"): value == "confirm"
            for name, value in self.cleaned_data.items()
            if value
        }


class TrackingForm(forms.Form):
    code = forms.CharField(label=_("Tracking code"), max_length=100)
    provider = forms.CharField(
        label=_("Carrier"), max_length=50, help_text=_("As Letzshop names it, e.g. post_lu.")
    )


@admin.register(Order, site=site)
class OrderAdmin(StoreScopedAdmin):
    list_display = ["number", "placed_at", "status", "channel", "email", "total"]
    list_filter = ["status", "channel"]
    list_select_related = ["store"]
    search_fields = ["number", "email", "external_number"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, ShipmentInline, OrderEventInline]
    actions = ["accept_selected", "cancel_selected", "deliver_selected"]
    change_form_template = "backoffice/order_change_form.html"
    fieldsets = [
        (None, {"fields": ["number", "status", "channel", "placed_at", "paid_at"]}),
        (_("Customer"), {"fields": ["email", "customer", "locale"]}),
        (_("Addresses"), {"fields": [("shipping_address_block", "billing_address_block")]}),
        (_("Totals"), {"fields": ["subtotal", "shipping_total", "vat_total", "total"]}),
    ]
    readonly_fields = ["shipping_address_block", "billing_address_block"]

    def _address_block(self, address) -> str:
        lines = address_lines(address or {})
        if address and address.get("phone"):
            lines.append(address["phone"])
        if not lines:
            return "-"
        return format_html(
            '<address class="bo-address">{}</address>',
            format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines)),  # noqa: S308
        )

    @admin.display(description=_("shipping address"))
    def shipping_address_block(self, order):
        return self._address_block(order.shipping_address)

    @admin.display(description=_("billing address"))
    def billing_address_block(self, order):
        return self._address_block(order.billing_address)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/ship/", view(self.ship_view), name="marketplace_order_ship"),
            path(
                "<path:object_id>/transition/<slug:to>/",
                view(require_POST(self.transition_view)),
                name="marketplace_order_transition",
            ),
            path(
                "<path:object_id>/letzshop/units/",
                view(require_POST(self.letzshop_units_view)),
                name="marketplace_order_letzshop_units",
            ),
            path(
                "<path:object_id>/letzshop/tracking/",
                view(require_POST(self.letzshop_tracking_view)),
                name="marketplace_order_letzshop_tracking",
            ),
            *super().get_urls(),
        ]

    def _order_for_work(self, request, object_id) -> Order:
        order = self.get_object(request, object_id)
        if not self.has_fulfil_permission(request, order):
            raise PermissionDenied
        return order

    def _change_url(self, order):
        return reverse("backoffice:marketplace_order_change", args=[order.pk])

    def ship_view(self, request, object_id):
        order = self._order_for_work(request, object_id)
        if order.channel == Order.Channel.LETZSHOP:
            # Shipped only with its tracking, which Letzshop must hear about.
            self.message_user(request, services.letzshop_ship_refusal(order), messages.ERROR)
            return HttpResponseRedirect(self._change_url(order))
        lines = list(order.lines.order_by("pk"))
        form = ShipLinesForm(request.POST or None, lines=lines)
        if request.method == "POST" and form.is_valid():
            try:
                services.ship_order_lines(
                    order,
                    form.quantities(),
                    carrier=form.cleaned_data["carrier"],
                    tracking_number=form.cleaned_data["tracking_number"],
                    tracking_url=form.cleaned_data["tracking_url"],
                    actor=request.user,
                )
            except services.DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("Order %(number)s is now %(status)s.")
                    % {"number": order.number, "status": order.get_status_display()},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._change_url(order))
        return TemplateResponse(
            request,
            "backoffice/order_ship.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Ship order %(number)s") % {"number": order.number},
                "opts": self.opts,
                "original": order,
                "form": form,
            },
        )

    TRANSITIONS = {
        "processing": services.accept_order,
        "cancelled": services.cancel_order,
        "delivered": services.mark_delivered,
    }

    def transition_view(self, request, object_id, to):
        order = self._order_for_work(request, object_id)
        move = self.TRANSITIONS.get(to)
        if move is None:
            raise Http404(gettext("Not found."))
        try:
            changed = move(order, actor=request.user, note=request.POST.get("note", "")[:500])
        except services.DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            if changed:
                message = gettext("Order %(number)s is now %(status)s.")
            else:
                message = gettext("Order %(number)s already is %(status)s.")
            self.message_user(
                request,
                message % {"number": order.number, "status": order.get_status_display()},
                messages.SUCCESS if changed else messages.INFO,
            )
        return HttpResponseRedirect(self._change_url(order))

    def letzshop_units_view(self, request, object_id):
        """Confirm or decline the chosen Letzshop units (`decide_units`); refusals, such as
        an open exception, are shown as messages."""
        order = self._order_for_work(request, object_id)
        form = UnitDecisionsForm(request.POST, units=list(letzshop_selectors.order_units(order)))
        if not form.is_valid():
            self.message_user(request, gettext("Choose confirm or decline."), messages.ERROR)
            return HttpResponseRedirect(self._change_url(order))
        try:
            tasks = letzshop_services.decide_units(order, form.decisions(), actor=request.user)
        except services.DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                ngettext(
                    "%(count)d call to Letzshop queued.",
                    "%(count)d calls to Letzshop queued.",
                    len(tasks),
                )
                % {"count": len(tasks)},
                messages.SUCCESS if tasks else messages.INFO,
            )
        return HttpResponseRedirect(self._change_url(order))

    def letzshop_tracking_view(self, request, object_id):
        order = self._order_for_work(request, object_id)
        form = TrackingForm(request.POST)
        if not form.is_valid():
            self.message_user(
                request, gettext("Give a tracking code and a carrier."), messages.ERROR
            )
            return HttpResponseRedirect(self._change_url(order))
        try:
            task = letzshop_services.set_tracking(order, actor=request.user, **form.cleaned_data)
        except services.DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            message = (
                gettext("Tracking saved and queued for Letzshop.")
                if task
                else gettext("This tracking was already sent.")
            )
            self.message_user(request, message, messages.SUCCESS if task else messages.INFO)
        return HttpResponseRedirect(self._change_url(order))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra = {
            "can_fulfil": self.has_fulfil_permission(request, order),
            "can_ship": order.status in services.SHIPPABLE_STATUSES
            and order.channel != Order.Channel.LETZSHOP,
            "next_statuses": self._offered_statuses(order),
            **(extra_context or {}),
        }
        if order.channel == Order.Channel.LETZSHOP:
            units = list(letzshop_selectors.order_units(order))
            extra.update(
                unit_form=UnitDecisionsForm(units=units),
                tracking_form=TrackingForm(),
                letzshop_exceptions=list(OrderException.objects.filter(order=order)),
                letzshop_tasks=list(letzshop_selectors.order_tasks(order)),
            )
        return super().change_view(request, object_id, form_url, extra)

    def _offered_statuses(self, order) -> list[str]:
        """The transitions the order page offers as buttons. A Letzshop order is not
        accepted or cancelled wholesale: its units are confirmed or declined instead."""
        statuses = list(services.ORDER_TRANSITIONS[order.status])
        if order.channel == Order.Channel.LETZSHOP:
            refused = {Order.Status.PROCESSING, Order.Status.CANCELLED}
            statuses = [status for status in statuses if status not in refused]
        return statuses

    def _run_on_each(self, request, queryset, move):
        done = refused = 0
        for order in queryset.order_by("pk"):
            try:
                done += move(order, actor=request.user)
            except services.DomainError as exc:
                refused += 1
                self.message_user(request, str(exc), messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%(count)d order changed.", "%(count)d orders changed.", done)
                % {"count": done},
                messages.SUCCESS,
            )
        elif not refused:
            self.message_user(request, gettext("Nothing to change."), messages.INFO)

    @admin.action(description=_("Accept selected orders (processing)"), permissions=["fulfil"])
    def accept_selected(self, request, queryset):
        self._run_on_each(request, queryset, services.accept_order)

    @admin.action(description=_("Cancel selected orders"), permissions=["fulfil"])
    def cancel_selected(self, request, queryset):
        self._run_on_each(request, queryset, services.cancel_order)

    @admin.action(description=_("Mark selected orders delivered"), permissions=["fulfil"])
    def deliver_selected(self, request, queryset):
        self._run_on_each(request, queryset, services.mark_delivered)


# --- customers ----------------------------------------------------------------------------


@admin.register(Customer, site=site)
class CustomerAdmin(StoreScopedAdmin):
    view_roles = MANAGERS
    list_display = ["email", "first_name", "last_name", "preferred_language", "created_at"]
    list_filter = ["preferred_language"]
    search_fields = ["email", "first_name", "last_name"]
    fields = ["email", "first_name", "last_name", "phone", "preferred_language", "created_at"]
    readonly_fields = fields


# --- team ---------------------------------------------------------------------------------
# Owners invite by email (an Invitation); the person joins only by accepting the link
# with an account of that email (`services.accept_invitation`). Pages never say whether
# an account exists for an email.


class TeamRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def clean_role(self):
        role = self.cleaned_data["role"]
        member = self.instance
        if (
            member.role == Role.OWNER
            and role != Role.OWNER
            and Membership.objects.filter(store=member.store, role=Role.OWNER).count() <= 1
        ):
            raise ValidationError(gettext("A store keeps at least one owner."))
        return role


@admin.register(Membership, site=site)
class TeamAdmin(StoreScopedAdmin):
    """Members (name and email) and, below them, the pending invitations. Members join
    through invitations only: there is no add page here."""

    view_roles = change_roles = delete_roles = OWNERS
    form = TeamRoleForm
    change_list_template = "backoffice/team_change_list.html"
    list_display = ["member", "email", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "store"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    fields = ["member", "email", "store", "role"]
    readonly_fields = ["member", "email", "store"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.role == Role.OWNER:
            owners = Membership.objects.filter(store_id=obj.store_id, role=Role.OWNER).count()
            if owners <= 1:
                return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("name"))
    def member(self, membership):
        return membership.user.get_full_name() or "–"

    @admin.display(description=_("email"), ordering="user__email")
    def email(self, membership):
        return membership.user.email

    def changelist_view(self, request, extra_context=None):
        store_ids = stores_with(request, OWNERS)
        context = {
            "pending_invitations": list(selectors.pending_invitations(store_ids)),
            "show_store": len(store_ids) > 1,
            "can_invite": bool(stores_with(request, InvitationAdmin.add_roles)),
            "now": timezone.now(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def save_model(self, request, obj, form, change):
        services.change_member_role(obj, form.cleaned_data["role"], actor=request.user)

    def delete_model(self, request, obj):
        services.remove_team_member(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("store"):
            try:
                services.remove_team_member(membership, actor=request.user)
            except services.DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)


class InviteForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "store", "role"]

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        data = super().clean()
        email, store = data.get("email"), data.get("store")
        if email and store and services.is_team_member(store, email):
            raise ValidationError(gettext("%(email)s is already in the team.") % {"email": email})
        return data

    def validate_unique(self):
        # A pending invitation for this email is refreshed by the service, not refused.
        pass


@admin.register(Invitation, site=site)
class InvitationAdmin(StoreScopedAdmin):
    """Invite (add page), and every invitation with its status. Revoke and resend are
    POST-only and scoped: another store's invitation is a 404."""

    view_roles = add_roles = revoke_roles = OWNERS
    form = InviteForm
    list_display = ["email", "role", "status", "expires_at", "invited_by_name", "created_at"]
    list_filter = ["status", "role"]
    list_select_related = ["store", "invited_by"]
    search_fields = ["email"]
    actions = ["revoke_selected", "resend_selected"]
    fields = ["email", "store", "role"]
    change_form_template = "backoffice/invitation_change_form.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["email", "store", "role"]
        return ["email", "store", "role", "status", "invited_by_name", "created_at",
                "expires_at", "accepted_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    @admin.display(description=_("invited by"))
    def invited_by_name(self, invitation):
        user = invitation.invited_by
        return (user.get_full_name() or user.email) if user is not None else "–"

    def has_revoke_permission(self, request, obj=None):
        return self._allowed(request, self.revoke_roles, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(require_POST(self.revoke_view)),
                name="marketplace_invitation_revoke",
            ),
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(require_POST(self.resend_view)),
                name="marketplace_invitation_resend",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        invitation = services.invite_team_member(
            form.cleaned_data["store"],
            form.cleaned_data["email"],
            form.cleaned_data["role"],
            invited_by=request.user,
        )
        obj.pk, obj.created_at, obj.expires_at = (
            invitation.pk, invitation.created_at, invitation.expires_at,
        )  # fmt: skip
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        # The same words whether or not an account has this email.
        self.message_user(
            request,
            gettext("Invitation sent to %(email)s.") % {"email": obj.email},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("backoffice:marketplace_membership_changelist"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invitation = self.get_object(request, object_id)
        context = {
            "can_revoke": invitation.status == Invitation.Status.PENDING
            and self.has_revoke_permission(request, invitation),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _scoped_invitation(self, request, object_id) -> Invitation:
        invitation = self.get_object(request, object_id)
        if not self.has_revoke_permission(request, invitation):
            raise PermissionDenied
        return invitation

    def revoke_view(self, request, object_id):
        invitation = self._scoped_invitation(request, object_id)
        try:
            if services.revoke_invitation(invitation, actor=request.user):
                self.message_user(
                    request,
                    gettext("Invitation to %(email)s revoked.") % {"email": invitation.email},
                    messages.SUCCESS,
                )
        except services.DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        return HttpResponseRedirect(reverse("backoffice:marketplace_membership_changelist"))

    def resend_view(self, request, object_id):
        invitation = self._scoped_invitation(request, object_id)
        try:
            services.resend_invitation(invitation, actor=request.user)
        except services.DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                gettext("Invitation sent to %(email)s.") % {"email": invitation.email},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("backoffice:marketplace_membership_changelist"))

    @admin.action(description=_("Revoke selected invitations"), permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        count = 0
        for invitation in queryset:
            try:
                count += services.revoke_invitation(invitation, actor=request.user)
            except services.DomainError as exc:
                self.message_user(request, f"{invitation.email}: {exc}", messages.ERROR)
        self.message_user(request, gettext("%(count)d invitation(s) revoked.") % {"count": count})

    @admin.action(description=_("Resend selected invitations"), permissions=["revoke"])
    def resend_selected(self, request, queryset):
        count = 0
        for invitation in queryset.select_related("store"):
            try:
                services.resend_invitation(invitation, actor=request.user)
                count += 1
            except services.DomainError as exc:
                self.message_user(request, f"{invitation.email}: {exc}", messages.ERROR)
        self.message_user(request, gettext("%(count)d invitation(s) resent.") % {"count": count})


# --- product imports ----------------------------------------------------------------------


class ImportJobForm(FeedUploadForm):
    """The staff upload form, with the kind and the stores this user may import into."""

    kind = forms.ChoiceField(
        choices=[("", _("Detect from the file's header")), *ImportJob.Kind.choices],
        required=False,
    )

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores
        stores = list(stores)
        # One store: nothing to choose, so nothing to fill in (or to forget). A store
        # posted anyway must still be that one.
        self.only_store = stores[0] if len(stores) == 1 else None
        if self.only_store is not None:
            self.fields["store"].required = False
            self.fields["store"].widget = forms.HiddenInput()
            self.fields["store"].initial = self.only_store.code

    def clean_store(self):
        return self.cleaned_data["store"] or self.only_store


@admin.register(ImportJob, site=site)
class ImportJobAdmin(StoreScopedAdmin):
    """Jobs are started from the add page (`create_import_job`) and written by the worker:
    the job page is read-only, with the live progress bar and the rejected lines."""

    view_roles = add_roles = MANAGERS
    list_display = [
        "created_at", "source_name", "kind", "language", "status", "rows_read", "rows_created",
        "rows_updated", "rows_unchanged", "rows_rejected",
    ]  # fmt: skip
    list_filter = ["status", "kind"]
    list_select_related = ["store"]
    change_form_template = "imports/admin/importjob_change_form.html"
    fields = [
        "store", "source_name", "kind", "language", "format", "status", "error_message",
        ("rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_rejected"),
        "created_by", ("created_at", "started_at", "finished_at"),
    ]  # fmt: skip
    readonly_fields = [
        "store", "source_name", "kind", "language", "format", "status", "error_message",
        "rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_rejected",
        "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip

    @admin.display(description=_("File or URL"))
    def source_name(self, job):
        return job.original_name or job.source_url

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/progress.json",
                view(self.progress_view),
                name="imports_importjob_progress",
            ),
            path(
                "<path:object_id>/rejected-lines.csv",
                view(self.rejected_lines_view),
                name="imports_importjob_rejected_lines",
            ),
            *super().get_urls(),
        ]

    def _url(self, name, job) -> str:
        return reverse(f"backoffice:imports_importjob_{name}", args=[job.pk])

    def progress_view(self, request, object_id):
        return progress_response(self.get_object(request, object_id))

    def rejected_lines_view(self, request, object_id):
        return rejected_lines_response(self.get_object(request, object_id))

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        stores = Store.objects.filter(pk__in=stores_with(request, self.add_roles)).order_by("name")
        if request.method == "POST":
            form = ImportJobForm(request.POST, request.FILES, stores=stores)
            if form.is_valid():
                job = start_import(form, request.user)
                return HttpResponseRedirect(self._url("change", job))
        else:
            form = ImportJobForm(stores=stores)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import products"),
            "opts": self.opts,
            "form": form,
            "only_store": form.only_store,
        }
        status = 400 if form.is_bound and form.errors else 200
        return TemplateResponse(request, "backoffice/import_add.html", context, status=status)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {
            **progress_context(job, progress_url=self._url("progress", job)),
            **rejected_lines_context(job, errors_csv_url=self._url("rejected_lines", job)),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)


# --- feed exports (site-level pages: a store, not a model row, is what they show) -----------


def feed_exports_view(request):
    """One download link per store and language, and the URL Letzshop polls (with the
    store's secret token, created on first view; owners rotate it)."""
    store_ids = stores_with(request, MANAGERS)
    if not store_ids:
        raise PermissionDenied
    roles = store_roles(request)
    feeds = []
    for store in Store.objects.filter(pk__in=store_ids).order_by("name"):
        token = feed_export_token(store).token
        feeds.append(
            {
                "store": store,
                "can_rotate": roles[store.pk] in OWNERS,
                "languages": [
                    {
                        "code": language,
                        "name": Language(language).label,
                        "download_url": reverse(
                            "backoffice:feed_download", args=[store.code, language]
                        ),
                        "poll_url": request.build_absolute_uri(
                            reverse("feeds:public_feed", args=[store.code, language])
                        )
                        + f"?token={token}",
                    }
                    for language in store.languages
                ],
            }
        )
    context = {**site.each_context(request), "title": gettext("Product feeds"), "feeds": feeds}
    return TemplateResponse(request, "backoffice/feed_exports.html", context)


def feed_download_view(request, store_code: str, language: str):
    store = own_store(request, store_code, MANAGERS)
    if language not in LANGUAGE_CODES:
        raise Http404(gettext("Not found."))
    return feed_response(store, language, download=True)


def rotate_feed_token_view(request, store_code: str):
    store = own_store(request, store_code, OWNERS)
    rotate_feed_export_token(store)
    messages.success(
        request,
        gettext("The feed URLs of %(store)s have a new token; the old ones stopped working.")
        % {"store": store.name},
    )
    return HttpResponseRedirect(reverse("backoffice:feed_exports"))


# --- Letzshop -----------------------------------------------------------------------------

# The endpoint is not among them: the store's API key is sent there, so only platform
# staff (Django admin) may point an account at another server.
ACCOUNT_SETTINGS = ("vendor_id", "auto_sync", "interval_minutes")


class LetzshopSettingsForm(letzshop_admin.LetzshopAccountForm):
    """The platform's account form; the API key field is write-only (never rendered back)."""

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and not cleaned.get("api_key"):
            try:
                self.instance.api_key  # noqa: B018 - kept as is: it must still decrypt
            except ValueError:
                self.add_error("api_key", gettext("The stored key cannot be read: enter it again."))
        return cleaned


@admin.register(LetzshopAccount, site=site)
class LetzshopAccountAdmin(StoreScopedAdmin):
    """The store's Letzshop settings, test connection, sync now and historical import.

    URL names match the platform admin's so its account template serves here too."""

    view_roles = add_roles = change_roles = MANAGERS
    form = LetzshopSettingsForm
    change_form_template = "backoffice/letzshop_account_change_form.html"
    list_display = letzshop_admin.LetzshopAccountAdmin.list_display
    list_select_related = ["store"]
    status_fields = ["status", "last_synced_at", "last_attempt_at", "last_error"]
    SYNC_LOGS_SHOWN = 20

    def get_fields(self, request, obj=None):
        fields = ["store", "api_key", *ACCOUNT_SETTINGS]
        return [*fields, *self.status_fields] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        return ["store", *self.status_fields] if obj else []

    def save_model(self, request, obj, form, change):
        new_key = form.cleaned_data.get("api_key")
        account = letzshop_services.connect_account(
            obj.store,
            api_key=new_key or obj.api_key,
            endpoint=obj.endpoint if change else "",
            **{name: form.cleaned_data[name] for name in ACCOUNT_SETTINGS},
        )
        if new_key and account.status == LetzshopAccount.Status.AUTH_FAILED:
            letzshop_services.set_api_key(account, new_key)  # clears the refusal
        obj.pk = account.pk

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            ("import-progress/", self.import_progress_view, "letzshop_import_progress"),
            ("historical-import/", self.historical_import_view, "letzshop_historical_import"),
            ("test-connection/", self.test_connection_view, "letzshop_test_connection"),
            ("sync/", self.sync_now_view, "letzshop_sync_now"),
        ]
        return [
            path(
                f"<path:object_id>/{route}",
                view(handler if name.endswith("progress") else require_POST(handler)),
                name=name,
            )
            for route, handler, name in urls
        ] + super().get_urls()

    def _account_for_work(self, request, object_id) -> LetzshopAccount:
        account = self.get_object(request, object_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        return account

    def _done(self, account):
        return HttpResponseRedirect(
            reverse("backoffice:letzshop_letzshopaccount_change", args=[account.pk])
        )

    def import_progress_view(self, request, object_id):
        latest = self.get_object(request, object_id).historical_imports.first()
        data = letzshop_selectors.import_progress(latest) if latest else {"status": "none"}
        return JsonResponse(data)

    def historical_import_view(self, request, object_id):
        account = self._account_for_work(request, object_id)
        letzshop_services.start_historical_import(account)
        self.message_user(request, gettext("Historical import queued."), messages.SUCCESS)
        return self._done(account)

    def test_connection_view(self, request, object_id):
        account = self._account_for_work(request, object_id)
        try:
            vendors = letzshop_services.test_connection(account)
        except LetzshopError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            names = ", ".join(f"{vendor['name']} ({vendor['id']})" for vendor in vendors)
            self.message_user(
                request,
                gettext("Connection OK: %(vendors)s.") % {"vendors": names},
                messages.SUCCESS,
            )
        return self._done(account)

    def sync_now_view(self, request, object_id):
        account = self._account_for_work(request, object_id)
        result = letzshop_services.sync_account(account)
        if result.skipped:
            self.message_user(request, gettext("A sync is already running."), messages.WARNING)
        elif result.error:
            self.message_user(request, result.error, messages.ERROR)
        else:
            count = {"seen": result.seen, "created": result.created}
            seen = ngettext("%(seen)d shipment read", "%(seen)d shipments read", result.seen)
            created = ngettext(
                "%(created)d order created", "%(created)d orders created", result.created
            )
            self.message_user(
                request,
                f"{seen % count}, {created % count}.",
                messages.SUCCESS,
            )
        if result.rejected:
            self.message_user(request, result.rejected_message, messages.WARNING)
        return self._done(account)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        orders = Order.objects.filter(store_id=account.store_id, channel=Order.Channel.LETZSHOP)
        extra = {
            "latest_import": account.historical_imports.first(),
            "letzshop_orders": [
                (order, reverse("backoffice:marketplace_order_change", args=[order.pk]))
                for order in orders.order_by("-placed_at")[:20]
            ],
            "sync_logs": SyncLog.objects.filter(account=account)[: self.SYNC_LOGS_SHOWN],
            "rejected_shipments": account.rejected_shipments.all()[: self.SYNC_LOGS_SHOWN],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)


class ExceptionProductForm(forms.ModelForm):
    class Meta:
        model = OrderException
        fields = ["resolved_product"]
        labels = {"resolved_product": _("Map to product")}


@admin.register(OrderException, site=site)
class OrderExceptionAdmin(StoreScopedAdmin):
    """Unmatched products of Letzshop orders: map to one of the store's products or ignore
    (every role). An open exception blocks confirming the order's units."""

    store_path = "order__store"
    change_roles = ALL_ROLES
    form = ExceptionProductForm
    change_form_template = "backoffice/orderexception_change_form.html"
    list_display = ["created_at", "order", "gtin", "sku", "title", "status"]
    list_filter = ["status"]
    list_select_related = ["order__store"]
    search_fields = ["gtin", "sku", "title", "order__number"]
    actions = ["ignore_selected"]
    fields = ["order_link", "gtin", "sku", "title", "status", "resolved_product", "resolved_by"]
    readonly_fields = ["order_link", "gtin", "sku", "title", "status", "resolved_by"]

    @admin.display(description=_("order"))
    def order_link(self, exception):
        url = reverse("backoffice:marketplace_order_change", args=[exception.order_id])
        return format_html('<a href="{}">{}</a>', url, exception.order.number)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != OrderException.Status.OPEN:
            return False
        return super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("resolved_product")
        if field is not None and obj is not None:
            field.queryset = Product.objects.filter(store_id=obj.order.store_id).order_by("sku")
            field.required = True
        return form

    def get_urls(self):
        return [
            path(
                "<path:object_id>/ignore/",
                self.admin_site.admin_view(require_POST(self.ignore_view)),
                name="letzshop_orderexception_ignore",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        try:
            letzshop_services.resolve_exception(
                obj, form.cleaned_data["resolved_product"], actor=request.user
            )
        except services.DomainError as exc:
            obj.refusal = str(exc)

    def response_change(self, request, obj):
        if getattr(obj, "refusal", ""):
            self.message_user(request, obj.refusal, messages.ERROR)
            return HttpResponseRedirect(request.path)
        self.message_user(request, gettext("Mapped to the product."), messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("backoffice:marketplace_order_change", args=[obj.order_id])
        )

    def ignore_view(self, request, object_id):
        exception = self.get_object(request, object_id)
        if not self._allowed(request, self.change_roles, exception):
            raise PermissionDenied
        if letzshop_services.ignore_exception(exception, actor=request.user):
            self.message_user(request, gettext("Exception ignored."), messages.SUCCESS)
        else:
            self.message_user(
                request,
                gettext("This exception is already %(status)s.")
                % {"status": exception.get_status_display().lower()},
                messages.INFO,
            )
        return HttpResponseRedirect(
            reverse("backoffice:marketplace_order_change", args=[exception.order_id])
        )

    @admin.action(
        description=_("Ignore (confirm the order without a product)"), permissions=["change"]
    )
    def ignore_selected(self, request, queryset):
        count = sum(
            letzshop_services.ignore_exception(exception, actor=request.user)
            for exception in queryset
        )
        self.message_user(
            request,
            ngettext("%(count)d exception ignored.", "%(count)d exceptions ignored.", count)
            % {"count": count},
        )
