"""Storefront pages: browse, search, cart, checkout, shopper account, team invitations."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from marketplace import selectors, services
from marketplace.forms import (
    SORT_CHOICES,
    AddToCartForm,
    CartQuantityForm,
    CheckoutForm,
    ProductFilterForm,
    RegistrationForm,
)
from marketplace.models import Cart, Checkout, Invitation, Order, Product, Store

CART_SESSION_KEY = "cart_token"
CHECKOUTS_SESSION_KEY = "checkouts"


def storefront_context(request) -> dict:
    """Template context shared by every storefront page. The cart count is lazy: pages
    that do not show it (admin) pay no query."""

    def cart_count() -> int:
        session = getattr(request, "session", None)
        return selectors.cart_item_count(session.get(CART_SESSION_KEY) if session else None)

    return {"LANGUAGES": settings.LANGUAGES, "cart_count": cart_count}


def _language() -> str:
    return (get_language() or "en").split("-")[0]


# --- cart in the session --------------------------------------------------------------


def _session_cart(request: HttpRequest) -> Cart | None:
    """The shopper's open cart with its items, or None. Claims an anonymous cart for the
    user who logged in since."""
    cart = selectors.get_open_cart(request.session.get(CART_SESSION_KEY))
    if cart is None:
        return None
    if request.user.is_authenticated and cart.user_id is None:
        services.attach_cart_to_user(cart, request.user)
    return cart


def _session_cart_or_new(request: HttpRequest) -> Cart:
    cart = _session_cart(request)
    if cart is None:
        cart = services.open_cart(user=request.user)
        request.session[CART_SESSION_KEY] = str(cart.token)
    return cart


# --- catalogue --------------------------------------------------------------------------


NEW_ARRIVALS_SHOWN = 8


def _new_arrivals(language: str) -> list[Product]:
    """The newest products mixed across stores: every store's newest, then every store's
    second newest, and so on (one import must not fill the shelf). One query, plus the
    translations' prefetch."""
    newest = selectors.search_products(selectors.ProductFilters(sort="newest"), language=language)
    ranked = newest.annotate(
        store_rank=Window(
            RowNumber(),
            partition_by=F("store_id"),
            order_by=[F("created_at").desc(), F("id").desc()],
        )
    )
    return list(
        ranked.filter(store_rank__lte=NEW_ARRIVALS_SHOWN).order_by(
            "store_rank", "-created_at", "-id"
        )[:NEW_ARRIVALS_SHOWN]
    )


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "storefront/home.html",
        {
            "products": _new_arrivals(_language()),
            "stores": list(selectors.active_stores()[:12]),
        },
    )


def _listing(request: HttpRequest, *, store: Store | None = None) -> dict:
    """Context of a filtered, sorted, paginated product grid. A fixed number of queries
    whatever the page size: count, page, translations, brands (and stores)."""
    form = ProductFilterForm(request.GET)
    overrides = {"store": store.code} if store is not None else {}
    filters = form.filters(**overrides)
    products = selectors.search_products(filters, language=_language())
    paginator = Paginator(products, settings.WIZAMART_PRODUCTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return {
        "form": form,
        "filters": filters,
        "page_obj": page,
        "products": list(page.object_list),
        "brands": selectors.brand_facet(filters),
        "sort_choices": SORT_CHOICES,
    }


def product_list(request: HttpRequest) -> HttpResponse:
    context = _listing(request)
    context["stores"] = list(selectors.active_stores())
    return render(request, "storefront/product_list.html", context)


def store_detail(request: HttpRequest, code: str) -> HttpResponse:
    store = get_object_or_404(Store, code=code, is_active=True)
    context = _listing(request, store=store)
    context["store"] = store
    return render(request, "storefront/store.html", context)


def product_detail(request: HttpRequest, public_id) -> HttpResponse:
    product = selectors.get_visible_product(public_id)
    if product is None:
        raise Http404(_("No such product."))
    more = list(
        selectors.search_products(
            selectors.ProductFilters(store=product.store.code, sort="newest"),
            language=_language(),
        ).exclude(pk=product.pk)[:4]
    )
    return render(
        request,
        "storefront/product_detail.html",
        {"product": product, "form": AddToCartForm(), "more": more},
    )


# --- cart -------------------------------------------------------------------------------


def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = _session_cart(request)
    groups, total = selectors.cart_groups(cart) if cart is not None else ([], 0)
    return render(request, "storefront/cart.html", {"groups": groups, "total": total})


def _sellable_product(public_id) -> Product:
    product = (
        Product.objects.select_related("store")
        .prefetch_related("translations")
        .filter(public_id=public_id)
        .first()
    )
    if product is None:
        raise Http404(_("No such product."))
    return product


@require_POST
def cart_add(request: HttpRequest, public_id) -> HttpResponse:
    product = _sellable_product(public_id)
    if not (product.is_active and product.store.is_active):
        raise Http404(_("No such product."))
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a quantity between 1 and 99."))
        return redirect("marketplace:product_detail", public_id=product.public_id)
    cart = _session_cart_or_new(request)
    try:
        services.add_to_cart(cart, product, form.cleaned_data["quantity"])
    except services.DomainError as exc:
        messages.error(request, str(exc))
        return redirect("marketplace:product_detail", public_id=product.public_id)
    messages.success(request, _("Added to your cart."))
    return redirect("marketplace:cart")


@require_POST
def cart_update(request: HttpRequest, public_id) -> HttpResponse:
    cart = _session_cart(request)
    if cart is None:
        return redirect("marketplace:cart")
    product = _sellable_product(public_id)
    form = CartQuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a quantity between 0 and 99."))
        return redirect("marketplace:cart")
    try:
        services.update_cart_item(cart, product, form.cleaned_data["quantity"])
    except services.DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Your cart was updated."))
    return redirect("marketplace:cart")


@require_POST
def cart_remove(request: HttpRequest, public_id) -> HttpResponse:
    cart = _session_cart(request)
    if cart is not None:
        services.remove_from_cart(cart, _sellable_product(public_id))
        messages.success(request, _("Removed from your cart."))
    return redirect("marketplace:cart")


# --- checkout ---------------------------------------------------------------------------


def checkout(request: HttpRequest) -> HttpResponse:
    cart = _session_cart(request)
    if cart is None or not cart.items.all():
        # The cart page says it is empty: no message on top of it.
        return redirect("marketplace:cart")
    groups, total = selectors.cart_groups(cart)
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        if form.is_valid():
            try:
                done = services.place_orders(
                    cart,
                    email=form.cleaned_data["email"],
                    shipping_address=form.shipping_address(),
                    billing_address=form.billing_address(),
                    locale=_language(),
                    user=request.user,
                )
            except services.DomainError as exc:
                form.add_error(None, str(exc))
            else:
                request.session.pop(CART_SESSION_KEY, None)
                seen = request.session.get(CHECKOUTS_SESSION_KEY, [])
                request.session[CHECKOUTS_SESSION_KEY] = [*seen[-19:], str(done.public_id)]
                return redirect("marketplace:checkout_done", public_id=done.public_id)
    else:
        initial = {"country": "LU", "billing_same": True}
        if request.user.is_authenticated:
            initial["email"] = request.user.email
            initial["name"] = request.user.get_full_name()
        form = CheckoutForm(initial=initial)
    return render(
        request,
        "storefront/checkout.html",
        {"form": form, "groups": groups, "total": total},
    )


def checkout_done(request: HttpRequest, public_id) -> HttpResponse:
    """The confirmation page: only for the session that checked out, or its account."""
    done = get_object_or_404(Checkout, public_id=public_id)
    own_session = str(done.public_id) in request.session.get(CHECKOUTS_SESSION_KEY, [])
    own_account = request.user.is_authenticated and done.user_id == request.user.pk
    if not (own_session or own_account):
        raise Http404(_("No such checkout."))
    orders = selectors.checkout_orders(done)
    total = sum((order.total for order in orders), 0)
    paid = bool(orders) and all(order.paid_at is not None for order in orders)
    return render(
        request,
        "storefront/checkout_done.html",
        {"checkout": done, "orders": orders, "total": total, "paid": paid},
    )


# --- account ----------------------------------------------------------------------------


def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("marketplace:my_orders")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.register_shopper(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Your account is ready."))
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("marketplace:my_orders")
        return redirect(next_url)
    return render(request, "registration/register.html", {"form": form})


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    orders = selectors.orders_of_user(request.user)
    page = Paginator(orders, 20).get_page(request.GET.get("page"))
    return render(
        request,
        "storefront/my_orders.html",
        {"page_obj": page, "orders": list(page.object_list)},
    )


@login_required
def order_detail(request: HttpRequest, public_id) -> HttpResponse:
    order = (
        selectors.orders_of_user(request.user)
        .prefetch_related("lines")
        .filter(public_id=public_id)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    return render(
        request,
        "storefront/order_detail.html",
        {"order": order, "events": order.events.all(), "Order": Order},
    )


# --- team invitations -------------------------------------------------------------------


def team_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link of an invitation email: shows the store and the role; a logged-in user
    whose email is the invited one accepts with a POST (`accept_invitation`). Unknown
    token: 404. Revoked, expired or used: 410 with the reason; wrong account: 403."""
    invitation = selectors.invitation_for_token(token)
    if invitation is None:
        raise Http404(_("No such invitation."))
    error, status = "", 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('marketplace:login')}?{urlencode({'next': request.path})}")
        try:
            services.accept_invitation(token, request.user)
        except services.InvitationRefused as exc:
            error = str(exc)
            invitation.refresh_from_db()
        else:
            messages.success(
                request,
                _("You are now in the team of %(store)s.") % {"store": invitation.store.name},
            )
            return redirect("backoffice:index")
    Status = Invitation.Status
    accepted_here = (
        invitation.status == Status.ACCEPTED and invitation.accepted_by_id == request.user.pk
    )
    open_ = invitation.status == Status.PENDING and invitation.expires_at > timezone.now()
    if not open_ and not accepted_here:
        status = 410
        error = error or services.invitation_closed_reason(invitation)
    elif error:
        status = 403
    email_matches = request.user.is_authenticated and (
        (request.user.email or "").strip().lower() == invitation.email
    )
    next_query = urlencode({"next": request.path})
    return render(
        request,
        "storefront/team_invitation.html",
        {
            "invitation": invitation,
            "open": open_,
            "accepted_here": accepted_here,
            "email_matches": email_matches,
            "error": error,
            "login_url": f"{reverse('marketplace:login')}?{next_query}",
            "register_url": f"{reverse('marketplace:register')}?{next_query}",
        },
        status=status,
    )
