"""The OpenAPI 3.1 document of the admin API, generated from the :class:`~authz.admin.api.Operation`
declarations that also build the routes, with JSON Schemas (2020-12) from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authz.admin import licensing_openapi
from authz.admin.api import Operation
from authz.admin.bootstrap import ADMIN_SCOPES
from authz.admin.problems import MEDIA_TYPE, PROBLEM_SCHEMA
from authz.core.settings import ADMIN_API_PATH as ADMIN_PATH
from authz.core.settings import Settings

REF = "#/components/schemas/{model}"
OPENAPI_PATH = "/openapi.json"
SCOPE_TEXT = {
    "admin:read": "Read agents, credentials, teams and policy versions.",
    "admin:write": "Create and change agents, credentials, teams and policies.",
    "metering:write": "Report usage events (resource servers).",
    "metering:read": "Read usage.",
    "budgets:use": "Reserve and settle budget for token uses (resource servers).",
    "subjects:admin": "Export or erase a person's data (GDPR Art. 15/17/20); granted by no other scope.",
    "approvals:check": "Ask whether a gated tool call may go ahead; consumes a human approval (resource servers).",
}
ERROR_TEXT = {
    400: "The request body is not valid JSON, or nests arrays and objects too deeply. Nothing was changed.",
    401: "No, or an invalid, access token (WWW-Authenticate: Bearer).",
    403: "The token lacks the scope this operation needs (insufficient_scope).",
    404: "No such agent, credential, team or policy version.",
    409: "Illegal in the current state (e.g. reinstating an active agent, anything on a revoked agent, "
    "storing policies while AUTHZ_POLICIES is not `db`).",
    413: "The request body is too large.",
    415: "The request body is not application/json.",
    422: "Invalid input; `errors` names each field. Nothing was changed.",
    429: "A hard budget is exhausted; Retry-After gives the seconds until its period ends.",
    503: "The budget ledger is unreachable and a hard budget applies (fail closed).",
}


def document(settings: Settings, operations: list[Operation]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    paths.update(licensing_openapi.PATHS)
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "openapi",
            "summary": "This OpenAPI document",
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "authz admin API",
            "version": "1",
            "description": "Agents, their credentials, and teams. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": settings.endpoint(ADMIN_PATH)}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "licenseKey": licensing_openapi.SECURITY_SCHEME,
                "oauth2": {
                    "type": "oauth2",
                    "description": "An access token from this server for the resource "
                    f"{settings.endpoint(ADMIN_PATH)} (clients from `authz admin-client create`).",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": settings.endpoint("/token"),
                            "scopes": {s: SCOPE_TEXT[s] for s in ADMIN_SCOPES},
                        }
                    },
                },
            },
        },
    }


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{"oauth2": [op.scope]}],
        "responses": {
            str(op.status): {
                "description": "OK" if op.status == 200 else "Created",
                "content": {"application/json": {"schema": _schema(op.response, "serialization", schemas)}},
            }
        },
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _path_params(op.path)
    ]
    params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema, "description": q.description}
               for q in op.query]  # fmt: skip
    if params:
        out["parameters"] = params
    errors = {401, 403, *op.errors}
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _schema(op.body, "validation", schemas)}},
        }
        errors |= {400, 413, 415, 422}
    if op.query:
        errors.add(422)
    for status in sorted(errors):
        out["responses"][str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
    return out


def _schema(model: type[BaseModel] | TypeAdapter[Any], mode: str, schemas: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, TypeAdapter):
        schema = model.json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    else:
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    schemas.update(schema.pop("$defs", {}))
    if isinstance(model, TypeAdapter):
        return schema
    name = model.__name__
    if schemas.get(name, schema) != schema:  # two models of one name (e.g. CloseIn): qualify the later one
        name = f"{model.__module__.rsplit('.', 1)[-1]}.{name}"
    schemas[name] = schema
    return {"$ref": REF.format(model=name)}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def openapi_route(operations: list[Operation]) -> Route:
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document(request.app.state.ctx.settings, operations))

    return Route(OPENAPI_PATH, openapi, methods=["GET"])
