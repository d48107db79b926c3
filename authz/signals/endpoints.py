"""The SSF transmitter's HTTP endpoints: discovery, stream management, status, verification, RFC 8936 poll.

SSF §8: "all Stream Management API endpoints MUST use standard HTTP authentication and authorization
schemes, as per {{RFC9110}}. This authorization MUST associate a Receiver with one or more stream IDs and
"aud" values, such that only authorized Receivers are able to access or modify the details of the
associated Event Streams." A receiver is a registered resource server (HTTP Basic with its client
credentials); its streams carry its resource URI as ``aud``; another receiver's stream is a 404.

RFC 8936 §2.2 (poll request, abridged): ``maxEvents`` "indicating the maximum number of unacknowledged SETs
to be returned"; "A value of 0 MAY be used by SET Recipients that would like to perform an acknowledge-only
request"; ``returnImmediately`` "indicates the SET Transmitter SHOULD return an immediate response even if no
results are available (short polling). The default value is false, which indicates the request is to be
treated as an HTTP long poll"; ``ack`` holds the "jti" values of received SETs, and "Once a SET has been
acknowledged, the SET Transmitter is released from any obligation to retain the SET". §2.3 (response):
``sets`` is "A JSON object containing zero or more SETs being returned. Each member name is the "jti" of a
SET to be delivered, and its value is a JSON string representing the corresponding SET", and
``moreAvailable`` tells whether more unacknowledged SETs wait. Errors carry RFC 8935 §2.3's ``err`` and
``description``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from typing import Any
from urllib.parse import unquote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authz.core.settings import Settings
from authz.identity.clients import OAuthClient
from authz.signals.config import (
    BadRequest,
    check_transmitter_fields,
    receiver_fields,
    stream_config,
    transmitter_metadata,
    well_known_path,
)
from authz.signals.store import Batch
from authz.signals.transmitter import Transmitter, Wakeup
from guard.jsonload import JsonRefused, load_json

log = logging.getLogger("authz.signals")

MAX_BODY = 64 * 1024
MAX_STREAMS_PER_RECEIVER = 100
MAX_EVENTS = 100
NO_STORE = {"Cache-Control": "no-store"}
SET_JTI = re.compile(r"[0-9a-f]{32}")  # ours; an ack naming anything else acknowledges nothing


def _error(status: int, err: str, description: str) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ssf"'
    return JSONResponse({"err": err, "description": description}, status_code=status, headers=headers)


def _receiver(request: Request) -> OAuthClient | None:
    """The registered, active resource server that authenticated with HTTP Basic, or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except ValueError:  # not ASCII, not base64 (binascii.Error) or not UTF-8 (UnicodeDecodeError)
        return None
    client_id, secret = unquote(client_id), unquote(secret)  # RFC 6749 §2.3.1 form-encodes both
    if not sep or not client_id or len(client_id) > 512 or not client_id.isprintable():
        return None
    client = request.app.state.ctx.directory.client(client_id)
    if client is None or client.kind != "resource_server" or not client.active or not client.resource_uri:
        return None
    return client if client.check_client_secret(secret) else None


async def _json_body(request: Request) -> Any:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest("the body is too large")
    if not body:
        return {}
    try:
        return load_json(body, max_bytes=MAX_BODY)
    except JsonRefused as exc:
        raise BadRequest(str(exc)) from exc


def _tx(request: Request) -> Transmitter:
    tx: Transmitter = request.app.state.signals
    return tx


async def configuration(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.ctx.settings
    return JSONResponse(transmitter_metadata(settings), headers={"Cache-Control": "public, max-age=300"})


async def stream(request: Request) -> Response:
    """``/ssf/stream``: POST create, GET read (one or all), PATCH update, PUT replace, DELETE."""
    client = _receiver(request)
    if client is None:
        return _error(401, "authentication_failed", "authenticate as a registered resource server (HTTP Basic)")
    tx, settings = _tx(request), request.app.state.ctx.settings
    method = request.method
    stream_id = request.query_params.get("stream_id")
    try:
        body = await _json_body(request) if method in ("POST", "PATCH", "PUT") else None
        if method == "GET" and stream_id is None:
            rows = await asyncio.to_thread(tx.store.streams, client.client_id)
            return JSONResponse([stream_config(settings, r) for r in rows], headers=NO_STORE)
        if method == "POST":
            return await _create(tx, settings, client, body)
        if method in ("PATCH", "PUT"):
            stream_id = body.get("stream_id") if isinstance(body, dict) else None
        if not isinstance(stream_id, str) or not stream_id:
            raise BadRequest("stream_id is required")
        row = await asyncio.to_thread(tx.store.stream, client.client_id, stream_id)
        if row is None:
            return _error(404, "not_found", "no such stream for this receiver")
        now = int(time.time())
        if method == "DELETE":
            await asyncio.to_thread(tx.store.delete_stream, client.client_id, stream_id)
            return Response(status_code=204, headers=NO_STORE)
        if method == "GET":
            await asyncio.to_thread(tx.store.ack, stream_id, [], now)
            return JSONResponse(stream_config(settings, row), headers=NO_STORE)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        check_transmitter_fields(settings, body, row)
        values = receiver_fields(body, replace=method == "PUT")
        values.update(updated_at=now, seen_at=now)
        row = await asyncio.to_thread(tx.store.update_stream, client.client_id, stream_id, values)
        if row is None:
            return _error(404, "not_found", "no such stream for this receiver")
        return JSONResponse(stream_config(settings, row), headers=NO_STORE)
    except BadRequest as exc:
        return _error(400, "invalid_request", str(exc))


async def _create(tx: Transmitter, settings: Settings, client: OAuthClient, body: Any) -> Response:
    fields = receiver_fields(body, replace=True)
    now = int(time.time())
    await asyncio.to_thread(tx.store.purge_inactive, now - settings.ssf_inactivity_timeout)
    if await asyncio.to_thread(tx.store.count_streams, client.client_id) >= MAX_STREAMS_PER_RECEIVER:
        return _error(403, "access_denied", f"a receiver may hold at most {MAX_STREAMS_PER_RECEIVER} streams")
    assert client.resource_uri is not None
    row = await asyncio.to_thread(
        lambda: tx.store.create_stream(
            client_id=client.client_id,
            audience=client.resource_uri or "",
            method=fields["method"],
            events=fields["events_requested"],
            description=fields["description"],
            now=now,
        )
    )
    log.info("ssf stream %s created for %s", row.stream_id, client.client_id)
    return JSONResponse(stream_config(settings, row), status_code=201, headers=NO_STORE)


async def status(request: Request) -> Response:
    """``/ssf/status``: GET reads, POST sets ``enabled`` / ``paused`` / ``disabled`` (SSF §8.1.2)."""
    client = _receiver(request)
    if client is None:
        return _error(401, "authentication_failed", "authenticate as a registered resource server (HTTP Basic)")
    tx = _tx(request)
    try:
        body = await _json_body(request) if request.method == "POST" else {}
        stream_id = request.query_params.get("stream_id") if request.method == "GET" else body.get("stream_id")
        if not isinstance(stream_id, str) or not stream_id:
            raise BadRequest("stream_id is required")
        row = await asyncio.to_thread(tx.store.stream, client.client_id, stream_id)
        if row is None:
            return _error(404, "not_found", "no such stream for this receiver")
        if request.method == "POST":
            new, reason = body.get("status"), body.get("reason")
            if new not in ("enabled", "paused", "disabled"):
                raise BadRequest("status must be enabled, paused or disabled")
            if reason is not None and (not isinstance(reason, str) or "\x00" in reason):
                raise BadRequest("reason must be a string without NUL characters")
            now = int(time.time())
            values = {"status": new, "reason": reason[:MAX_BODY] if reason else None, "updated_at": now, "seen_at": now}
            row = await asyncio.to_thread(tx.store.update_stream, client.client_id, stream_id, values)
            assert row is not None
        out = {"stream_id": row.stream_id, "status": row.status}
        if row.reason:
            out["reason"] = row.reason
        return JSONResponse(out, headers=NO_STORE)
    except BadRequest as exc:
        return _error(400, "invalid_request", str(exc))


async def verify(request: Request) -> Response:
    """``/ssf/verify``: SSF §8.1.4.2 — answer 204 and send a verification event carrying ``state``."""
    client = _receiver(request)
    if client is None:
        return _error(401, "authentication_failed", "authenticate as a registered resource server (HTTP Basic)")
    tx = _tx(request)
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        stream_id, state = body.get("stream_id"), body.get("state")
        if not isinstance(stream_id, str) or not stream_id:
            raise BadRequest("stream_id is required")
        if state is not None and (not isinstance(state, str) or len(state) > 1024):
            raise BadRequest("state must be a string of at most 1024 characters")
    except BadRequest as exc:
        return _error(400, "invalid_request", str(exc))
    row = await asyncio.to_thread(tx.store.stream, client.client_id, stream_id)
    if row is None:
        return _error(404, "not_found", "no such stream for this receiver")
    await asyncio.to_thread(tx.verification, row, state)
    return Response(status_code=204, headers=NO_STORE)


def _poll_request(body: Any) -> tuple[int, bool, list[str]]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    max_events = body.get("maxEvents", MAX_EVENTS)
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0:
        raise BadRequest("maxEvents must be a non-negative integer")
    immediate = body.get("returnImmediately", False)
    if not isinstance(immediate, bool):
        raise BadRequest("returnImmediately must be a boolean")
    acks = body.get("ack", [])
    if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks) or len(acks) > 1000:
        raise BadRequest("ack must be an array of SET jti values")
    acks = [a for a in acks if SET_JTI.fullmatch(a)]
    errs = body.get("setErrs", {})
    if not isinstance(errs, dict):
        raise BadRequest("setErrs must be an object")
    for jti, err in list(errs.items())[:10]:
        if isinstance(err, dict):
            log.warning("receiver reported SET %r: %r", jti[:64], str(err.get("err"))[:64])
    return min(max_events, MAX_EVENTS), immediate, [*acks, *(j for j in errs if SET_JTI.fullmatch(j))]


async def poll(request: Request) -> Response:
    """``POST /ssf/poll/{stream_id}`` (RFC 8936): ack, then answer pending SETs, holding the request
    open up to ``AUTHZ_SSF_POLL_WAIT`` seconds until a revocation happens."""
    client = _receiver(request)
    if client is None:
        return _error(401, "authentication_failed", "authenticate as a registered resource server (HTTP Basic)")
    tx, settings = _tx(request), request.app.state.ctx.settings
    stream_id = request.path_params["stream_id"]
    try:
        max_events, immediate, acks = _poll_request(await _json_body(request))
    except BadRequest as exc:
        return _error(400, "invalid_request", str(exc))
    row = await asyncio.to_thread(tx.store.stream, client.client_id, stream_id)
    if row is None:
        return _error(404, "not_found", "no such stream for this receiver")
    deadline = time.monotonic() + settings.ssf_poll_wait
    while True:
        wake = tx.wakeup.current()
        batch: Batch | None = None
        if row.status == "enabled":
            sets, more, batch = await asyncio.to_thread(tx.collect, stream_id, max_events, acks)
        else:  # paused or disabled: "MUST NOT transmit events over the stream"
            await asyncio.to_thread(tx.store.ack, stream_id, acks, int(time.time()))
            sets, more = [], False
        acks = []
        remaining = deadline - time.monotonic()
        if sets or immediate or max_events == 0 or remaining <= 0 or await request.is_disconnected():
            after = None if batch is None else BackgroundTask(_persist, tx, batch)
            return JSONResponse({"sets": dict(sets), "moreAvailable": more}, headers=NO_STORE, background=after)
        if await _wait_or_disconnect(request, wake, remaining):
            return Response(status_code=204)  # nobody is listening any more (a receiver stopping)


async def _wait_or_disconnect(request: Request, wake: asyncio.Event | None, timeout: float) -> bool:
    """Wait for a new fact or the timeout; True as soon as the receiver hangs up (so a stopping receiver
    never holds this server's shutdown for the rest of the poll)."""
    hangup = asyncio.ensure_future(request.receive())  # the body is read: the next message is the disconnect
    woken = asyncio.ensure_future(Wakeup.wait(wake, timeout))
    try:
        done, _ = await asyncio.wait({hangup, woken}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (hangup, woken):
            task.cancel()
        await asyncio.gather(hangup, woken, return_exceptions=True)
    return hangup in done and not hangup.cancelled() and hangup.result().get("type") == "http.disconnect"


async def _persist(tx: Transmitter, batch: Batch) -> None:
    """After the answer: store the SETs just sent and move the cursor (a failure only means the facts are
    signed and sent again on the next poll; receivers apply a revocation twice to the same effect)."""
    try:
        await asyncio.to_thread(tx.store.persist, batch)
    except Exception:
        log.exception("storing SETs of stream %s failed; they are sent again on the next poll", batch.stream_id)


def signal_routes() -> list[Route]:
    """Endpoints under the issuer's path (the well-known document is routed by :func:`well_known_route`)."""
    return [
        Route("/ssf/stream", stream, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route("/ssf/status", status, methods=["GET", "POST"]),
        Route("/ssf/verify", verify, methods=["POST"]),
        Route("/ssf/poll/{stream_id}", poll, methods=["POST"]),
    ]


def well_known_route(settings: Settings) -> Route:
    return Route(well_known_path(settings), configuration, methods=["GET"])
