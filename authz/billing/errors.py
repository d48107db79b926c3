"""Billing errors: each carries an HTTP status and, for bad input, the field it names."""

from __future__ import annotations


class BillingError(Exception):
    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(BillingError):
    status = 404


class Conflict(BillingError):
    status = 409
