"""Tokens and assertions whose JWS header or payload nests JSON 15,000 deep: refused, never a 500.

Each is parsed before any signature is checked (to find the key), so a stranger controls that JSON.
"""

from __future__ import annotations

import base64

import pytest

from authz.oauth.grants.jwt_bearer import GRANT_TYPE as JWT_BEARER
from authz.oauth.grants.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from authz.oauth.grants.token_exchange import JWT
from tests.authz.conftest import AS, RESOURCE

pytestmark = pytest.mark.anyio

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DEEP = b'{"a":' + b"[" * 15_000
DEEP_HEADER = ".".join([_b64(DEEP), _b64(b'{"iss":"x"}'), _b64(b"sig")])
DEEP_PAYLOAD = ".".join([_b64(b'{"alg":"ES256","kid":"k"}'), _b64(DEEP), _b64(b"sig")])


@pytest.mark.parametrize("token", [DEEP_HEADER, DEEP_PAYLOAD], ids=["header", "payload"])
async def test_deeply_nested_tokens_are_refused_at_every_endpoint(authz: AS, token: str) -> None:
    assert (await authz.introspect(token)) == {"active": False}
    rs = authz.rs
    assert rs.client_secret is not None
    r = await authz.http.post("/revoke", data={"token": token}, auth=(rs.client_id, rs.client_secret))
    assert r.status_code == 200, r.text

    r = await authz.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE, "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": token},
    )  # fmt: skip
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text

    reg = authz.machine_client(grant_types=["client_credentials", TOKEN_EXCHANGE, JWT_BEARER])
    assert reg.client_secret is not None
    auth = (reg.client_id, reg.client_secret)
    exchange = {"grant_type": TOKEN_EXCHANGE, "resource": RESOURCE, "subject_token": token, "subject_token_type": JWT}
    r = await authz.http.post("/token", data=exchange, auth=auth)
    assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_request"), r.text
    r = await authz.http.post(
        "/token", data={"grant_type": JWT_BEARER, "assertion": token, "resource": RESOURCE}, auth=auth
    )
    assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_request"), r.text


async def test_a_dpop_proof_with_a_deeply_nested_header_is_invalid_dpop_proof(authz: AS) -> None:
    """6,000 ``[`` fit in a proof under its 8 KiB limit; json.loads raised RecursionError: a 500."""
    reg = authz.machine_client()
    assert reg.client_secret is not None
    proof = ".".join([_b64(b'{"typ":"dpop+jwt","x":' + b"[" * 5_000), _b64(b"{}"), _b64(b"sig")])
    r = await authz.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE},
        auth=(reg.client_id, reg.client_secret),
        headers={"DPoP": proof},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
