"""API keys are encrypted at rest and survive a key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from imports.letzshop import services
from imports.letzshop.models import LetzshopAccount


def _stored(account) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted FROM letzshop_letzshopaccount WHERE id = %s", [account.pk]
        )
        return cursor.fetchone()[0]


def test_ciphertext_in_the_database_is_not_the_key(store, settings):
    settings.WIZAMART_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    account = services.connect_account(store, api_key="secret-shop-manager-key")

    stored = _stored(account)
    assert "secret-shop-manager-key" not in stored
    assert LetzshopAccount.objects.get(pk=account.pk).api_key == "secret-shop-manager-key"


def test_old_ciphertexts_decrypt_after_a_new_key_is_put_first(store, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WIZAMART_ENCRYPTION_KEYS = [old_key]
    account = services.connect_account(store, api_key="key-before-rotation")
    old_ciphertext = _stored(account)

    settings.WIZAMART_ENCRYPTION_KEYS = [new_key, old_key]
    assert LetzshopAccount.objects.get(pk=account.pk).api_key == "key-before-rotation"

    assert services.reencrypt_api_keys() == 1
    assert _stored(account) != old_ciphertext
    settings.WIZAMART_ENCRYPTION_KEYS = [new_key]
    assert LetzshopAccount.objects.get(pk=account.pk).api_key == "key-before-rotation"


def test_a_key_no_configured_key_can_read_is_a_clear_error(store, settings):
    settings.WIZAMART_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    account = services.connect_account(store, api_key="k")
    settings.WIZAMART_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(ValueError, match="cannot be decrypted"):
        _ = LetzshopAccount.objects.get(pk=account.pk).api_key
    result = services.sync_account(account)
    account.refresh_from_db()
    assert account.status == "error" and "cannot be decrypted" in account.last_error
    assert "cannot be decrypted" in result.error
