"""Typed errors of the agent lifecycle; the admin API maps them to 404, 409 and 422 problems."""

from __future__ import annotations

from collections.abc import Sequence


class AgentError(Exception):
    """Base: a refused lifecycle request. ``str(error)`` is safe to show."""

    status = 400


class NotFound(AgentError):
    status = 404


class Conflict(AgentError):
    """An illegal transition (reinstate an active agent, anything but reads on a revoked agent, ...)."""

    status = 409


class Invalid(AgentError):
    """Bad input; ``errors`` names each field and what is wrong with it. Nothing was written."""

    status = 422

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors))


def invalid(field: str, message: str) -> Invalid:
    return Invalid([(field, message)])
