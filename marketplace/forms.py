"""Storefront forms: product filters, cart quantities, guest checkout, registration."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from marketplace.selectors import ProductFilters
from marketplace.services import MAX_CART_QUANTITY

EU_COUNTRIES = [
    ("LU", _("Luxembourg")),
    ("AT", _("Austria")),
    ("BE", _("Belgium")),
    ("BG", _("Bulgaria")),
    ("HR", _("Croatia")),
    ("CY", _("Cyprus")),
    ("CZ", _("Czechia")),
    ("DK", _("Denmark")),
    ("EE", _("Estonia")),
    ("FI", _("Finland")),
    ("FR", _("France")),
    ("DE", _("Germany")),
    ("GR", _("Greece")),
    ("HU", _("Hungary")),
    ("IE", _("Ireland")),
    ("IT", _("Italy")),
    ("LV", _("Latvia")),
    ("LT", _("Lithuania")),
    ("MT", _("Malta")),
    ("NL", _("Netherlands")),
    ("PL", _("Poland")),
    ("PT", _("Portugal")),
    ("RO", _("Romania")),
    ("SK", _("Slovakia")),
    ("SI", _("Slovenia")),
    ("ES", _("Spain")),
    ("SE", _("Sweden")),
]
OTHER_COUNTRIES = [
    ("CH", _("Switzerland")),
    ("GB", _("United Kingdom")),
    ("NO", _("Norway")),
    ("IS", _("Iceland")),
    ("LI", _("Liechtenstein")),
    ("US", _("United States")),
]
COUNTRY_CHOICES = [(_("European Union"), EU_COUNTRIES), (_("Other countries"), OTHER_COUNTRIES)]

SORT_CHOICES = [
    ("", _("Best match")),
    ("newest", _("Newest")),
    ("price_asc", _("Price: low to high")),
    ("price_desc", _("Price: high to low")),
    ("title", _("Name A–Z")),
]


class _AnyBrandField(forms.MultipleChoiceField):
    """Brand names from the query string; any short name is acceptable."""

    def valid_value(self, value) -> bool:
        return 0 < len(value) <= 120


class ProductFilterForm(forms.Form):
    """The product list's query string. Invalid values are ignored, never an error page."""

    q = forms.CharField(required=False, max_length=200)
    store = forms.SlugField(required=False, max_length=32)
    brand = _AnyBrandField(required=False)
    min_price = forms.DecimalField(required=False, min_value=0, max_digits=10, decimal_places=2)
    max_price = forms.DecimalField(required=False, min_value=0, max_digits=10, decimal_places=2)
    in_stock = forms.BooleanField(required=False)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def filters(self, **overrides) -> ProductFilters:
        self.is_valid()
        data = self.cleaned_data
        values = {
            "q": data.get("q") or "",
            "store": data.get("store") or "",
            "brands": tuple(data.get("brand") or ()),
            "min_price": data.get("min_price"),
            "max_price": data.get("max_price"),
            "in_stock": bool(data.get("in_stock")),
            "sort": data.get("sort") or "",
        }
        values.update(overrides)
        return ProductFilters(**values)


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=MAX_CART_QUANTITY, initial=1
    )


class CartQuantityForm(forms.Form):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=0, max_value=MAX_CART_QUANTITY)


class CheckoutForm(forms.Form):
    """Guest checkout: contact, shipping address and (unless the same) billing address."""

    email = forms.EmailField(label=_("Email"))
    name = forms.CharField(label=_("Full name"), max_length=200)
    street = forms.CharField(label=_("Street and number"), max_length=200)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20)
    city = forms.CharField(label=_("City"), max_length=100)
    country = forms.ChoiceField(label=_("Country"), choices=COUNTRY_CHOICES, initial="LU")
    phone = forms.CharField(label=_("Phone (optional)"), max_length=40, required=False)
    billing_same = forms.BooleanField(
        label=_("Billing address is the same as shipping"), required=False, initial=True
    )
    billing_name = forms.CharField(label=_("Full name"), max_length=200, required=False)
    billing_street = forms.CharField(label=_("Street and number"), max_length=200, required=False)
    billing_postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    billing_city = forms.CharField(label=_("City"), max_length=100, required=False)
    billing_country = forms.ChoiceField(
        label=_("Country"), choices=COUNTRY_CHOICES, initial="LU", required=False
    )

    BILLING_FIELDS = ("name", "street", "postal_code", "city", "country")

    def clean(self):
        data = super().clean()
        if not data.get("billing_same"):
            for name in self.BILLING_FIELDS:
                if not data.get(f"billing_{name}"):
                    self.add_error(f"billing_{name}", _("This field is required."))
        return data

    def _address(self, prefix: str) -> dict:
        data = self.cleaned_data
        address = {name: data[f"{prefix}{name}"].strip() for name in self.BILLING_FIELDS}
        first_name, _sep, last_name = address["name"].partition(" ")
        address["first_name"], address["last_name"] = first_name, last_name.strip()
        return address

    def shipping_address(self) -> dict:
        """The snapshot stored on the orders: name (and its first/last split), street,
        postal code, city, country code, phone."""
        address = self._address("")
        address["phone"] = self.cleaned_data.get("phone", "").strip()
        return address

    def billing_address(self) -> dict:
        if self.cleaned_data.get("billing_same"):
            return self.shipping_address()
        return self._address("billing_")


class RegistrationForm(UserCreationForm):
    """A shopper account: username, email (unique) and password twice."""

    email = forms.EmailField(label=_("Email"))

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email already exists."))
        return email
