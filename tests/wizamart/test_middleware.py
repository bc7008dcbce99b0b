import pytest
from django.urls import reverse

from marketplace.models import Store


@pytest.mark.parametrize(
    "url",
    [
        "/products/?brand=%00",
        "/products/?brand=a%00",
        "/stores/lux-shop/?brand=%00",
        "/products/?q=ok&%00=x",
    ],
)
def test_nul_in_query_string_is_a_400_not_a_500(client, store, url):
    response = client.get(url)

    assert response.status_code == 400
    assert response.content == b"Bad request: a query parameter contains a NUL character."


def test_nul_in_an_admin_list_filter_is_a_400(client, platform_admin):
    client.force_login(platform_admin)

    response = client.get(reverse("admin:marketplace_order_changelist") + "?status__exact=%00")

    assert response.status_code == 400


def test_ordinary_query_strings_pass(client, store):
    assert client.get("/products/?brand=Acme&q=caf%C3%A9").status_code == 200


def test_nul_in_the_session_cookie_is_a_400_not_a_500(client, store):
    client.cookies["sessionid"] = "abcdefgh\x00ijk"

    response = client.get("/products/")

    assert response.status_code == 400
    assert response.content == b"Bad request: a cookie contains a NUL character."


def test_admin_bulk_action_with_a_non_numeric_id_is_a_400(client, platform_admin, store):
    client.force_login(platform_admin)

    response = client.post(
        reverse("admin:marketplace_store_changelist"),
        {"action": "delete_selected", "_selected_action": ["abc"]},
    )

    assert response.status_code == 400
    assert Store.objects.filter(pk=store.pk).exists()


def test_admin_bulk_action_with_numeric_ids_still_works(client, platform_admin, store):
    client.force_login(platform_admin)

    response = client.post(
        reverse("admin:marketplace_store_changelist"),
        {"action": "delete_selected", "_selected_action": [str(store.pk)]},
    )

    assert response.status_code == 200  # Django's "are you sure?" page
    assert "Are you sure" in response.content.decode()
