"""OAuth error codes Authlib lacks, and the rule that public text and internal detail never mix.

Authlib's ``OAuth2Error`` tree is the vocabulary. ``description`` is short, safe to show and never
carries a secret or token; anything unexpected becomes a generic ``server_error`` with the detail
only in the log.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import OAuth2Error


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: "invalid_target: The requested resource is invalid, missing, unknown, or malformed."."""

    error = "invalid_target"
    status_code = 400


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    """RFC 6749 §4.1.2.1 ``temporarily_unavailable`` (e.g. a client metadata document cannot be fetched)."""

    error = "temporarily_unavailable"
    status_code = 503


class LoginRequiredError(OAuth2Error):  # type: ignore[misc]
    error = "login_required"
    status_code = 400
