"""Small typed route declarations: each :class:`Operation` is both a Starlette route and an OpenAPI
operation, so the served document cannot drift from the routes.

Per request: authenticate (401/403) -> parse the JSON body with size and depth limits (413, 400) and
shape-check it (422) -> run the
synchronous handler in a worker thread (it reads and writes SQL) -> a JSON response, or a problem:
lifecycle errors map to 404/409/422, anything unexpected to a 500 with the detail only in the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authz.admin.auth import Principal, authenticate
from authz.admin.bootstrap import admin_resource_uri
from authz.admin.problems import ApiProblem
from authz.billing.errors import BillingError
from authz.billing.money import MoneyError
from authz.context import Context
from authz.identity.agents.errors import AgentError, Invalid
from authz.identity.agents.lifecycle import Agents
from guard.jsonload import JsonRefused, load_json

log = logging.getLogger("authz.admin")

MAX_BODY = 64 * 1024
# A UTF-16 surrogate, escaped or encoded: json.loads lets a lone one through, pydantic refuses it (422).
SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Call:
    ctx: Context
    principal: Principal
    path: dict[str, str]
    query: QueryParams
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def agents(self) -> Agents:
        return Agents.from_context(self.ctx)

    @property
    def actor(self) -> str:
        return self.principal.client_id


class RawResponse(BaseModel):
    """A handler result sent as is (CSV, or JSON with extra headers such as an ETag)."""

    content: str
    media_type: str = "application/json"
    headers: dict[str, str] = {}


Handler = Callable[[Call], tuple[int, BaseModel]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    scope: str
    summary: str
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | TypeAdapter[Any] | None = None
    body_required: bool = True
    query: Sequence[QueryParam] = ()
    errors: Sequence[int] = field(default=(404,))
    max_body: int = MAX_BODY  # bytes; a metering batch of 1,000 events needs more than the default

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


Endpoint = Callable[[Request], Awaitable[Response]]


def routes(operations: Sequence[Operation]) -> list[Route]:
    """One Starlette route per path, serving every method declared on it.

    A route per operation made ``OPTIONS /agents`` (or any undeclared method) answer 405 with
    ``Allow: POST`` although ``GET`` is served too (RFC 9110 §15.5.6: the 405 "MUST generate an
    Allow header field ... containing a list of the target resource's currently supported methods").
    """
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = _endpoint(op)
    out: list[Route] = []
    # Literal paths first: for a method no route serves, Starlette answers with the first route whose
    # path matched, so /budgets/reserve must come before /budgets/{budget_id} (a full match still wins).
    for path, endpoints in sorted(by_path.items(), key=lambda item: item[0].count("{")):
        if len(endpoints) == 1:
            ((method, endpoint),) = endpoints.items()
            out.append(Route(path, endpoint, methods=[method]))
            continue

        async def dispatch(request: Request, endpoints: dict[str, Endpoint] = endpoints) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await endpoints[method](request)

        dispatch.__name__ = "_".join(e.__name__ for e in endpoints.values())
        out.append(Route(path, dispatch, methods=list(endpoints)))
    return out


def route(op: Operation) -> Route:
    """The route of a single operation (see :func:`routes` for paths with several methods)."""
    return Route(op.path, _endpoint(op), methods=[op.method])


def _public_url(ctx: Context, request: Request) -> str:
    """The request's URI under the issuer (what a DPoP proof's ``htu`` names), as the token endpoint sees it."""
    scope = request.scope
    path: str = scope["path"]
    return ctx.settings.issuer + path[len(scope.get("app_root_path", scope.get("root_path", ""))) :]


def _endpoint(op: Operation) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        ctx: Context = request.app.state.ctx
        try:
            principal = authenticate(
                ctx, request.headers, admin_resource_uri(ctx.settings), op.scope,
                dpop=request.app.state.server.dpop, method=request.method, url=_public_url(ctx, request),
            )  # fmt: skip
            body = await _body(request, op) if op.body is not None else None
            call = Call(ctx, principal, dict(request.path_params), request.query_params, body, request.headers)
            status, result = await anyio.to_thread.run_sync(op.handler, call)
        except ApiProblem as problem:
            return problem.response()
        except Invalid as exc:
            return ApiProblem(422, "The request has invalid fields.", errors=exc.errors).response()
        except AgentError as exc:
            return ApiProblem(exc.status, str(exc)).response()
        except (BillingError, MoneyError) as exc:  # billing input and lifecycle errors name their field
            status = exc.status if isinstance(exc, BillingError) else 422
            errors = [(exc.field, exc.message)] if exc.field is not None else None
            return ApiProblem(status, exc.message, errors=errors).response()
        except Exception:
            log.exception("admin API %s %s failed", op.method, op.path)
            return ApiProblem(500, "The server encountered an unexpected condition.").response()
        if isinstance(result, RawResponse):
            headers = {"Cache-Control": "no-store", **result.headers}
            return Response(result.content, status, headers, media_type=result.media_type)
        return Response(result.model_dump_json(), status, {"Cache-Control": "no-store"}, media_type="application/json")

    endpoint.__name__ = op.operation_id
    return endpoint


def _any_object(adapter: TypeAdapter[Any]) -> bool:
    """Whether ``adapter`` takes any JSON object as it is (``dict[str, Any]``, e.g. a metering batch)."""
    schema: dict[str, Any] = dict(adapter.core_schema)
    keys: str = schema.get("keys_schema", {}).get("type", "str")
    values: str = schema.get("values_schema", {}).get("type", "any")
    return schema["type"] == "dict" and keys == "str" and values == "any"


async def _body(request: Request, op: Operation) -> Any:
    raw = await request.body()
    if len(raw) > op.max_body:
        raise ApiProblem(413, "The request body is too large.")
    if not raw.strip() and not op.body_required:
        raw = b"{}"  # an action without options: an empty body is an empty object
    else:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiProblem(415, "The request body must be application/json.")
    try:
        value = load_json(raw, max_bytes=op.max_body)  # size, syntax, depth first: pydantic's parser has other limits
    except JsonRefused as exc:  # RFC 9110 §15.5.1: a syntax problem is 400 (422 is for well-formed content)
        raise ApiProblem(400, str(exc), errors=[("body", str(exc))]) from exc
    if (
        isinstance(value, dict)
        and isinstance(op.body, TypeAdapter)
        and _any_object(op.body)
        and not SURROGATE.search(raw)
    ):
        return value  # what validate_json would return, without parsing the body a second time
    try:
        # Strict JSON-mode validation: the types the OpenAPI document states (``false`` is not an
        # integer, ``"5"`` is not a number), found by the schemathesis run over this API.
        if isinstance(op.body, TypeAdapter):
            return op.body.validate_json(raw, strict=True)
        assert op.body is not None
        return op.body.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = [(".".join(str(x) for x in e["loc"]) or "body", e["msg"]) for e in exc.errors()]
        raise ApiProblem(422, "The request has invalid fields.", errors=errors) from exc
