"""Hooks: a wrong signature is refused when the hooks are made, naming the slot and the
function; a hook that raises is logged by name with its traceback, never a token."""

from __future__ import annotations

import logging

import httpx
import pytest
from app_driver import USER, expired, sign_in

from whop_oauth import ConfigurationError, OAuthClient, RefreshHooks, TokenManager
from whop_oauth.stores import MemoryTokenStore


def counts_refreshes(key: object) -> None:  # forgot the second parameter
    """A hook written for an older signature."""


def test_a_hook_with_a_wrong_signature_is_refused_by_slot_and_name() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RefreshHooks(on_refresh=counts_refreshes)

    message = str(caught.value)
    assert message.startswith(
        "RefreshHooks.on_refresh is called with (key, info), but "
        "test_hooks_named.counts_refreshes cannot take that: "
    )


def test_hooks_that_take_the_arguments_are_accepted() -> None:
    async def on_refresh(key: object, info: object) -> None: ...

    def on_grant_deleted(*args: object) -> None: ...

    hooks = RefreshHooks(on_refresh=on_refresh, on_grant_deleted=on_grant_deleted)
    assert (hooks.on_refresh, hooks.on_refresh_failed, hooks.on_grant_deleted) == (
        on_refresh,
        None,
        on_grant_deleted,
    )
    with pytest.raises(ConfigurationError, match="on_grant_deleted must be a function"):
        RefreshHooks(on_grant_deleted="audit")  # type: ignore[arg-type]


async def test_a_hook_that_raises_is_logged_by_name_with_its_traceback(
    client: OAuthClient, mock_http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def report_to_metrics(key: object, info: object) -> None:
        raise KeyError("tenant")  # the app's own bug

    manager = TokenManager(
        client, MemoryTokenStore(), hooks=RefreshHooks(on_refresh=report_to_metrics)
    )
    grant = await sign_in(client, mock_http)
    await manager.save(expired(grant), user=USER)

    fresh = await manager.get_token(user=USER)  # the refresh goes on regardless

    assert fresh.access_token != grant.access_token
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == (
        "the whop_oauth hook test_hooks_named.test_a_hook_that_raises_is_logged_by_name_with"
        "_its_traceback.<locals>.report_to_metrics raised KeyError"
    )
    assert record.exc_info is not None
    assert "report_to_metrics" in caplog.text  # the traceback names the line that failed
    for secret in (grant.access_token, grant.refresh_token, fresh.access_token):
        assert secret is not None
        assert secret not in caplog.text
