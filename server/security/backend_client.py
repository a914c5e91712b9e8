"""The client side of SMART Backend Services: build a token request and send it (used by the
``priorgate token`` command, the demo clients and tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from server.security.assertions import sign_client_assertion
from server.security.constants import CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_CLIENT_CREDENTIALS
from server.security.keys import SigningKey

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def token_request_form(
    client_id: str, key: SigningKey, token_url: str, scope: str, now: datetime
) -> dict[str, str]:
    """The form fields of a token request ("Obtaining an access token", client_credentials grant)."""
    assertion = sign_client_assertion(
        client_id, token_url, key.private_key, algorithm=key.algorithm, kid=key.kid, now=now
    )
    return {
        "grant_type": GRANT_TYPE_CLIENT_CREDENTIALS,
        "scope": scope,
        "client_assertion_type": CLIENT_ASSERTION_TYPE_JWT_BEARER,
        "client_assertion": assertion,
    }


def fetch_token(
    client_id: str,
    key: SigningKey,
    *,
    token_url: str,
    scope: str,
    now: datetime,
    http: httpx.Client | None = None,
) -> dict[str, Any]:
    """POST a token request; returns the JSON body (a token response or an OAuth error object)."""
    form = token_request_form(client_id, key, token_url, scope, now)
    client = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
    try:
        response = client.post(token_url, data=form)
    finally:
        if http is None:
            client.close()
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"error": "invalid_response", "error_description": f"HTTP {response.status_code} without JSON"}
    return body
