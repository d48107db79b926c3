"""The active Cedar policy set of the server (``/policies``), and data-subject requests (``/subjects``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_client.sdk.resources.base import R, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg


class Policies(Surface[R]):
    """``/policies``: the active Cedar policy set; store a new version; the history."""

    @operation("GET /policies")
    def get(self) -> R:
        return self._request("GET", "/policies")

    @operation("PUT /policies")
    def put(
        self,
        sources: Mapping[str, str],
        *,
        schema: str | None = None,
        entities: str | Mapping[str, str] | None = None,
        comment: str | None = None,
    ) -> R:
        """Store and activate a policy set (``{file name: Cedar text}``); refused with 409 if it does not validate."""
        ents = entities if entities is None or isinstance(entities, str) else dict(entities)
        body = compact(sources=dict(sources), schema=schema, entities=ents, comment=comment)
        return self._request("PUT", "/policies", json=body)

    @operation("POST /policies/test")
    def test(
        self,
        tests: Mapping[str, str | Mapping[str, Any]] | None = None,
        *,
        sources: Mapping[str, str] | None = None,
        schema: str | None = None,
        entities: str | Mapping[str, str] | None = None,
    ) -> R:
        """Run policy tests (``{"ALLOW/<name>" or "DENY/<name>": JSON text or object}``; default: the
        server's shipped tests) against the active set, or against a draft given as ``sources`` (and
        ``schema``/``entities``, as :meth:`put` takes them) that is never stored. The answer
        (:class:`~agent_client.sdk.models.PolicyTestReport`) has one result per test; an invalid draft
        or test raises an ``ApiError`` (422) whose ``errors`` name each field and its ``file:line:col``.
        It changes nothing on the server, so it is retried like a GET."""
        ents = entities if entities is None or isinstance(entities, str) else dict(entities)
        cases = None if tests is None else {k: v if isinstance(v, str) else dict(v) for k, v in tests.items()}
        body = compact(tests=cases, sources=None if sources is None else dict(sources), schema=schema, entities=ents)
        return self._request("POST", "/policies/test", json=body, idempotent=True)

    @operation("GET /policies/versions")
    def versions(self) -> R:
        return self._request("GET", "/policies/versions")

    @operation("GET /policies/versions/{}")
    def version(self, version: int) -> R:
        return self._request("GET", f"/policies/versions/{_seg(version)}")


class Subjects(Surface[R]):
    """``/subjects/{id}``: a person's data export and erasure (GDPR Art. 15/17/20; scope ``subjects:admin``)."""

    @operation("GET /subjects/{}/export")
    def export(self, subject_id: str) -> R:
        return self._request("GET", f"/subjects/{_seg(subject_id)}/export")

    @operation("POST /subjects/{}/erase")
    def erase(self, subject_id: str, *, reason: str | None = None) -> R:
        """Erase the person's data; ``reason`` (e.g. the request id) is recorded in the audit trail."""
        return self._request("POST", f"/subjects/{_seg(subject_id)}/erase", json=compact(reason=reason))
