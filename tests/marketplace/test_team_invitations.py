"""Team invitations: nobody joins a store's team without accepting, with the invited
email, through the link they were sent; inviting never tells whether an account exists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketplace import services
from marketplace.models import Invitation, Membership
from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
LINK_PREFIX = "/team/invitations/"


@pytest.fixture(autouse=True)
def broker(monkeypatch):
    from notifications import tasks

    monkeypatch.setattr(tasks.send_email, "apply_async", lambda *a, **kw: None)


def user(username, email=None, **extra):
    return get_user_model().objects.create_user(
        username=username, email=email or f"{username}@example.lu", password=PASSWORD, **extra
    )


def invite(store, email, role="staff", *, by):
    """Invite through the service; returns the invitation and the token of its link."""
    invitation = services.invite_team_member(store, email, role, invited_by=by)
    return invitation, token_of(OutboundEmail.objects.filter(to=email.lower()).latest("pk"))


def token_of(email: OutboundEmail) -> str:
    url = email.context["accept_url"]
    assert url.startswith(settings.SITE_URL + LINK_PREFIX), url
    return url.removeprefix(settings.SITE_URL + LINK_PREFIX).removesuffix("/")


def link(token):
    return reverse("marketplace:team_invitation", args=[token])


def backoffice(name, *args):
    return reverse(f"backoffice:marketplace_{name}", args=args)


def team_state() -> tuple:
    return (
        list(Membership.objects.order_by("pk").values_list("user_id", "store_id", "role")),
        list(
            Invitation.objects.order_by("pk").values_list(
                "status", "role", "token_hash", "expires_at", "accepted_by", "accepted_at"
            )
        ),
        OutboundEmail.objects.count(),
    )


# --- inviting -------------------------------------------------------------------------------


def test_inviting_an_existing_account_creates_no_membership_until_it_accepts(
    client, store, owner, shopper
):
    invitation, token = invite(store, "Shopper@Example.lu", "manager", by=owner)

    assert (invitation.email, invitation.role, invitation.status) == (
        "shopper@example.lu",
        "manager",
        "pending",
    )
    assert invitation.accepted_by is None
    assert not Membership.objects.filter(user=shopper).exists()

    client.force_login(shopper)
    response = client.post(link(token))

    assert response.status_code == 302
    assert response["Location"] == reverse("backoffice:index")
    membership = Membership.objects.get(user=shopper)
    assert (membership.store, membership.role) == (store, "manager")


def test_invite_page_answers_the_same_for_an_existing_and_an_unknown_email(
    client, store, owner, shopper
):
    client.force_login(owner)
    users_before = get_user_model().objects.count()

    def post(email):
        response = client.post(
            backoffice("invitation_add"), {"email": email, "store": store.pk, "role": "owner"}
        )
        page = client.get(response["Location"])
        shown = [str(m).replace(email, "EMAIL") for m in page.context["messages"]]
        return response.status_code, response["Location"], shown

    assert post("shopper@example.lu") == post("nobody@example.lu")
    assert get_user_model().objects.count() == users_before
    assert list(Membership.objects.values_list("user", flat=True)) == [owner.pk]
    invitations = Invitation.objects.order_by("email")
    assert [(i.email, i.role, i.status, i.accepted_by) for i in invitations] == [
        ("nobody@example.lu", "owner", "pending", None),
        ("shopper@example.lu", "owner", "pending", None),
    ]
    assert sorted(OutboundEmail.objects.values_list("to", "template_code")) == [
        ("nobody@example.lu", "team_invitation"),
        ("shopper@example.lu", "team_invitation"),
    ]
    page = client.get(backoffice("membership_changelist")).content.decode()
    assert "shopper@example.lu" in page and "nobody@example.lu" in page
    assert "Anna" not in page  # the shopper's name: nothing shows the account exists


def test_invitation_email_is_queued_with_the_accept_link(store, owner):
    invitation, token = invite(store, "new.person@example.lu", "staff", by=owner)

    email = OutboundEmail.objects.get(template_code="team_invitation")
    assert (email.to, email.store, email.status) == ("new.person@example.lu", store, "queued")
    assert email.context["accept_url"] == f"{settings.SITE_URL}/team/invitations/{token}/"
    assert email.context["store_name"] == "Lux Shop"
    assert email.context["role"] == "Staff"
    assert Invitation.hash_token(token) == invitation.token_hash
    assert token not in invitation.token_hash  # only the hash is stored
    assert len(token) >= 40


def test_inviting_again_refreshes_the_one_pending_invitation(store, owner):
    first, old_token = invite(store, "new.person@example.lu", "staff", by=owner)
    second, new_token = invite(store, "NEW.person@example.lu", "manager", by=owner)

    assert second.pk == first.pk
    assert Invitation.objects.count() == 1
    assert Invitation.objects.get().role == "manager"
    assert new_token != old_token
    assert OutboundEmail.objects.count() == 2
    with pytest.raises(services.InvitationRefused, match="not valid"):  # the old link is gone
        services.accept_invitation(old_token, user("new.person", email="new.person@example.lu"))


def test_inviting_someone_already_in_the_team_is_refused(client, store, owner):
    staff = user("staff")
    Membership.objects.create(user=staff, store=store, role="staff")
    before = team_state()

    with pytest.raises(services.DomainError, match="already in the team"):
        services.invite_team_member(store, "STAFF@example.lu", "owner", invited_by=owner)
    client.force_login(owner)
    response = client.post(
        backoffice("invitation_add"),
        {"email": "staff@example.lu", "store": store.pk, "role": "owner"},
    )

    assert response.status_code == 200
    assert "staff@example.lu is already in the team." in response.content.decode()
    assert team_state() == before


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_staff_and_managers_cannot_invite(client, store, owner, role):
    member = user(role)
    Membership.objects.create(user=member, store=store, role=role)
    client.force_login(member)
    before = team_state()

    response = client.post(
        backoffice("invitation_add"),
        {"email": "friend@example.lu", "store": store.pk, "role": "owner"},
    )

    assert response.status_code == 403
    assert team_state() == before


# --- accepting ------------------------------------------------------------------------------


def test_accepting_with_another_logged_in_email_is_refused_and_writes_nothing(
    client, store, owner, shopper
):
    _, token = invite(store, "someone.else@example.lu", "owner", by=owner)
    client.force_login(shopper)
    before = team_state()

    page = client.get(link(token))
    response = client.post(link(token))

    assert page.status_code == 200
    assert "Accept the invitation" not in page.content.decode()
    assert response.status_code == 403
    assert "This invitation is for someone.else@example.lu" in response.content.decode()
    assert team_state() == before
    with pytest.raises(services.InvitationRefused):
        services.accept_invitation(token, shopper)
    assert team_state() == before


def test_accepting_creates_exactly_one_membership_with_the_role(client, store, owner, shopper):
    invitation, token = invite(store, "shopper@example.lu", "manager", by=owner)
    client.force_login(shopper)

    page = client.get(link(token))
    response = client.post(link(token))

    assert page.status_code == 200
    assert "Lux Shop" in page.content.decode() and "Manager" in page.content.decode()
    assert response.status_code == 302
    assert list(Membership.objects.filter(store=store).values_list("user", "role")) == [
        (owner.pk, "owner"),
        (shopper.pk, "manager"),
    ]
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by) == ("accepted", shopper)
    assert invitation.accepted_at is not None
    assert client.get(reverse("backoffice:index")).status_code == 200


def test_accepting_twice_is_a_no_op(client, store, owner, shopper):
    _, token = invite(store, "shopper@example.lu", "staff", by=owner)

    assert services.accept_invitation(token, shopper) is True
    after_first = team_state()
    assert services.accept_invitation(token, shopper) is False
    client.force_login(shopper)
    response = client.post(link(token))

    assert response.status_code == 302
    assert team_state() == after_first
    assert Membership.objects.filter(user=shopper).count() == 1


def test_a_used_invitation_cannot_be_accepted_by_another_account(store, owner, shopper):
    _, token = invite(store, "shopper@example.lu", "staff", by=owner)
    services.accept_invitation(token, shopper)
    twin = user("twin", email="SHOPPER@example.lu")  # an old duplicate email
    before = team_state()

    with pytest.raises(services.InvitationRefused, match="already been used"):
        services.accept_invitation(token, twin)
    assert team_state() == before


def test_expired_invitation_is_refused(client, store, owner, shopper):
    invitation, token = invite(store, "shopper@example.lu", "owner", by=owner)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(shopper)

    page = client.get(link(token))
    response = client.post(link(token))

    assert page.status_code == 410
    assert "This invitation has expired" in page.content.decode()
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()
    assert not Membership.objects.filter(user=shopper).exists()
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by, invitation.accepted_at) == (
        "expired",
        None,
        None,
    )


def test_revoked_invitation_is_refused(client, store, owner, shopper):
    invitation, token = invite(store, "shopper@example.lu", "owner", by=owner)
    assert services.revoke_invitation(invitation, actor=owner) is True
    client.force_login(shopper)
    before = team_state()

    page = client.get(link(token))
    response = client.post(link(token))

    assert page.status_code == 410
    assert "withdrawn" in page.content.decode()
    assert response.status_code == 410
    assert team_state() == before
    assert not Membership.objects.filter(user=shopper).exists()


def test_unknown_token_is_404(client, shopper):
    client.force_login(shopper)
    assert client.get(link("not-a-real-token")).status_code == 404
    assert client.post(link("not-a-real-token")).status_code == 404
    assert not Membership.objects.exists()


def test_anonymous_is_offered_login_or_sign_up_and_cannot_accept(client, store, owner):
    _, token = invite(store, "new.person@example.lu", "staff", by=owner)
    before = team_state()

    page = client.get(link(token))
    response = client.post(link(token))

    body = page.content.decode()
    assert page.status_code == 200
    assert f"/account/login/?next=%2Fteam%2Finvitations%2F{token}%2F" in body
    assert f"/account/register/?next=%2Fteam%2Finvitations%2F{token}%2F" in body
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("marketplace:login") + "?next=")
    assert team_state() == before


def test_a_new_person_signs_up_with_the_invited_email_and_accepts(client, store, owner):
    _, token = invite(store, "new.person@example.lu", "manager", by=owner)

    response = client.post(
        f"{reverse('marketplace:register')}?next={link(token)}",
        {
            "username": "newperson",
            "email": "New.Person@example.lu",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response["Location"] == link(token)
    assert client.post(link(token)).status_code == 302

    membership = Membership.objects.get(user__username="newperson")
    assert (membership.store, membership.role) == (store, "manager")


# --- the back office team page --------------------------------------------------------------


def test_team_page_lists_members_by_name_and_email_and_pending_invitations(client, store, owner):
    colleague = user("jdoe42", email="jane@example.lu", first_name="Jane", last_name="Doe")
    Membership.objects.create(user=colleague, store=store, role="manager")
    invite(store, "pending@example.lu", "staff", by=owner)
    revoked, _ = invite(store, "revoked@example.lu", "staff", by=owner)
    services.revoke_invitation(revoked, actor=owner)
    client.force_login(owner)

    with CaptureQueriesContext(connection) as one:
        page = client.get(backoffice("membership_changelist"))
    for n in range(3):
        invite(store, f"more{n}@example.lu", "staff", by=owner)
    with CaptureQueriesContext(connection) as four:
        client.get(backoffice("membership_changelist"))

    body = page.content.decode()
    assert "Jane Doe" in body and "jane@example.lu" in body
    assert "jdoe42" not in body  # never the username
    assert "pending@example.lu" in body
    assert "revoked@example.lu" not in body
    assert len(four) == len(one)


def test_owner_revokes_and_resends_from_the_team_page(client, store, owner):
    invitation, old_token = invite(store, "new.person@example.lu", "staff", by=owner)
    client.force_login(owner)

    response = client.post(backoffice("invitation_resend", invitation.pk))
    assert response.status_code == 302
    new_token = token_of(OutboundEmail.objects.latest("pk"))
    assert new_token != old_token
    assert client.get(link(old_token)).status_code == 404
    assert client.get(link(new_token)).status_code == 200

    response = client.post(backoffice("invitation_revoke", invitation.pk))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert client.get(link(new_token)).status_code == 410
    assert client.post(backoffice("invitation_resend", invitation.pk)).status_code == 302
    assert OutboundEmail.objects.count() == 2  # a revoked invitation is not resent


def test_owner_of_another_store_cannot_revoke_or_resend_its_invitations(
    client, store, owner, other_store
):
    invitation, _ = invite(store, "new.person@example.lu", "staff", by=owner)
    other_owner = user("otherowner")
    Membership.objects.create(user=other_owner, store=other_store, role="owner")
    client.force_login(other_owner)
    before = team_state()

    assert client.post(backoffice("invitation_revoke", invitation.pk)).status_code == 404
    assert client.post(backoffice("invitation_resend", invitation.pk)).status_code == 404
    assert client.get(backoffice("invitation_change", invitation.pk)).status_code == 404
    response = client.post(
        backoffice("invitation_changelist"),
        {"action": "revoke_selected", "index": "0", "_selected_action": [invitation.pk]},
    )
    assert response.status_code == 403
    assert (
        "new.person@example.lu"
        not in client.get(backoffice("membership_changelist")).content.decode()
    )
    assert team_state() == before
