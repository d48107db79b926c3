"""OpenAPI path items of the client-facing licensing endpoints (key-authenticated or open), merged
into the admin API's document by :mod:`authz.admin.openapi`."""

from __future__ import annotations

from typing import Any

from authz.licensing.validation import CODES

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
LICENSE: list[dict[str, list[str]]] = [{"licenseKey": []}]
SIGNED = {
    "Authz-Signature": {
        "description": 'keyid="<kid>", algorithm="ed25519", signature="<base64 Ed25519 over \'response/\' + body>"; '
        "keys at /licenses/jwks.",
        "schema": {"type": "string"},
    }
}
NONCE = {
    "description": "Echoed in meta.nonce inside the signed body.",
    "oneOf": [{"type": "string"}, {"type": "integer"}],
}
META: dict[str, Any] = {
    "type": "object",
    "required": ["nonce", "ts", "date"],
    "properties": {
        "nonce": NONCE,
        "ts": {"type": "integer", "description": "Server Unix time."},
        "date": {"type": "string"},
    },
}


def _signed(description: str, data: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "required": ["data", "meta"], "properties": {"data": data, "meta": meta or META}}
    return {"description": description, "headers": SIGNED, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    if 415 in codes:  # a JSON body: one that does not parse, or nests too deeply, is 400
        codes = (400, *codes)
    text = {
        400: "The request body is not valid JSON, or nests arrays and objects more than 32 deep.",
        401: "No, a malformed, or an unknown license key (WWW-Authenticate: License).",
        403: "The license is suspended, revoked or expired (problem with `code`).",
        404: "No such machine on this license.",
        409: "Refused by the license's state: TOO_MANY_MACHINES, HEARTBEAT_DEAD, FINGERPRINT_SCOPE_MISMATCH (`code`).",
        413: "The request body is too large.",
        415: "The request body is not application/json.",
        422: "Invalid input; `errors` names each field. Nothing was changed.",
        429: "Rate limited (per key, per IP, or unknown keys per IP); Retry-After.",
    }
    return {str(c): {"description": text[c], "content": PROBLEM} for c in codes}


def _body(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "additionalProperties": True, "properties": {**props, "nonce": NONCE}}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


LICENSE_REF = {"$ref": "#/components/schemas/LicenseOut"}
MACHINE_REF = {"$ref": "#/components/schemas/MachineOut"}
FP = {"type": "string", "maxLength": 255}
MACHINE_PATH = [{"name": "machine_id", "in": "path", "required": True, "schema": {"type": "string"}}]

PATHS: dict[str, dict[str, Any]] = {
    "/licenses/actions/validate-key": {
        "post": {
            "operationId": "validate_key",
            "summary": "Validate a license key (no authentication: the key is the credential)",
            "security": [],
            "requestBody": _body(
                {
                    "key": {"type": "string"},
                    "scope": {
                        "type": "object",
                        "properties": {
                            "product": {"type": "string"},
                            "fingerprint": FP,
                            "entitlements": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
                ["key"],
            ),
            "responses": {
                "200": _signed(
                    "Always 200 for a well-formed key; meta.valid and meta.code say the outcome.",
                    {"oneOf": [LICENSE_REF, {"type": "null"}]},
                    {
                        **META,
                        "properties": {
                            **META["properties"],
                            "valid": {"type": "boolean"},
                            "code": {"type": "string", "enum": list(CODES)},
                            "detail": {"type": "string"},
                            "scope": {"type": "object"},
                            "machine": {"oneOf": [MACHINE_REF, {"type": "null"}]},
                        },
                    },
                ),
                **_errors(413, 415, 422, 429),
            },
        }
    },
    "/licenses/me": {
        "get": {
            "operationId": "get_own_license",
            "summary": "The license of this key, with its machines",
            "security": LICENSE,
            "parameters": [{"name": "nonce", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _signed("The license", LICENSE_REF), **_errors(401, 422, 429)},
        }
    },
    "/licenses/me/checkout": {
        "post": {
            "operationId": "checkout_own_license",
            "summary": "An offline license file (a machine file with a fingerprint)",
            "security": LICENSE,
            "requestBody": _body(
                {"fingerprint": FP, "ttl": {"type": "integer"}, "encrypt": {"type": "boolean", "default": True}}
            ),
            "responses": {
                "200": _signed("The file", {"$ref": "#/components/schemas/CheckoutOut"}),
                **_errors(401, 403, 409, 413, 415, 422, 429),
            },
        }
    },
    "/licenses/jwks": {
        "get": {
            "operationId": "license_jwks",
            "summary": "The Ed25519 public keys (JWK Set) of signed answers and files",
            "security": [],
            "responses": {
                "200": {"description": "JWK Set", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    },
    "/machines/actions/activate": {
        "post": {
            "operationId": "activate_machine",
            "summary": "Activate a machine by fingerprint (the same fingerprint twice is the same machine)",
            "security": LICENSE,
            "requestBody": _body(
                {"fingerprint": FP, "name": {"type": "string"}, "platform": {"type": "string"}}, ["fingerprint"]
            ),
            "responses": {
                "201": _signed("Activated", MACHINE_REF),
                "200": _signed("Already activated", MACHINE_REF),
                **_errors(401, 403, 409, 413, 415, 422, 429),
            },
        }
    },
    "/machines/{machine_id}/actions/heartbeat": {
        "post": {
            "operationId": "machine_heartbeat",
            "summary": "Heartbeat (revives a dead machine within the resurrection window)",
            "security": LICENSE,
            "parameters": MACHINE_PATH,
            "requestBody": _body({}),
            "responses": {"200": _signed("Alive", MACHINE_REF), **_errors(401, 403, 404, 409, 422, 429)},
        }
    },
    "/machines/{machine_id}/actions/deactivate": {
        "post": {
            "operationId": "deactivate_own_machine",
            "summary": "Deactivate one of this license's machines (frees a seat)",
            "security": LICENSE,
            "parameters": MACHINE_PATH,
            "requestBody": _body({}),
            "responses": {
                "200": _signed("Deactivated", {"$ref": "#/components/schemas/Deactivated"}),
                **_errors(401, 404, 422, 429),
            },
        }
    },
}
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "`License <key>`: the license key is the credential.",
}
