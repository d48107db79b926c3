"""Typed settings: environment variables ``AUTHZ_*`` over an optional TOML file over embedded defaults.

The embedded defaults run on one machine with nothing else installed: a SQLite file under
``data_dir``, no Redis, a loopback issuer. Production values are checked by :func:`check_safe`,
which refuses to start on settings that would make the server unsafe and says what to set.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_ISSUER = "http://127.0.0.1:9100"
ADMIN_API_PATH = "/api/v1"
CONSOLE_PATH = "/console"


CONSOLE_ROLES = ("viewer", "operator", "admin")


def parse_console_roles(text: str) -> dict[str, str]:
    """``"alice=admin, bob=viewer"`` -> ``{"alice": "admin", "bob": "viewer"}`` (usernames, or group
    names for ``console_group_roles``). Raises ValueError."""
    roles: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        user, sep, role = (x.strip() for x in item.partition("="))
        if not sep or not user or role not in CONSOLE_ROLES:
            raise ValueError(f"{item!r} is not name=role with role one of {', '.join(CONSOLE_ROLES)}")
        roles[user] = role
    return roles


class UnsafeSettingsError(ValueError):
    """Raised when the settings would run an unsafe server; the message says what to set."""


class Settings(BaseSettings):
    """Every setting of the authorization server. Env: ``AUTHZ_<NAME>``; file: ``AUTHZ_CONFIG`` (TOML)."""

    model_config = SettingsConfigDict(env_prefix="AUTHZ_", frozen=True, extra="forbid")

    issuer: str = Field(
        DEFAULT_ISSUER,
        description="The exact issuer identifier (RFC 8414 §2). Compared byte for byte by clients: no trailing slash.",
    )
    data_dir: Path = Field(Path(".authz"), description="Where the embedded defaults keep their files.")
    database_url: str = Field("", description="SQLAlchemy URL. Empty: a SQLite file in data_dir.")
    redis_url: str = Field("", description="Optional Redis URL for budgets, revocation fan-out and metering.")
    key_encryption_key: str = Field(
        "",
        description="Base64url 32-byte key that encrypts signing keys and keys the secret digests. "
        "Required unless the issuer is loopback (then a key file in data_dir is created).",
    )
    signing_alg: Literal["ES256", "ES384", "RS256", "EdDSA"] = Field("ES256", description="Access token algorithm.")
    access_token_ttl: int = Field(300, ge=30, le=3600, description="Access token lifetime in seconds (short).")
    refresh_token_ttl: int = Field(86400, ge=60, description="Refresh token lifetime in seconds (sliding, per token).")
    refresh_family_ttl: int = Field(30 * 86400, ge=60, description="Cap on a refresh family's total lifetime.")
    code_ttl: int = Field(60, ge=10, le=600, description="Authorization code lifetime in seconds.")
    key_rotation_overlap: int = Field(
        3600, ge=0, description="Seconds a retired signing key stays published after its last token expires."
    )
    policies: str = Field(
        "builtin",
        description="Cedar scope policies: `builtin` (the embedded set: permits loopback demo servers, denies "
        "everything else), `db` (the database's active version, managed through `PUT /api/v1/policies` and "
        "followed by every replica without restart; the embedded set while none is stored), a directory of "
        "policy files, or `off` (no policy decision at all). Only `db` reads stored versions.",
    )
    dev_mode: bool = Field(
        False, description="Development mode: signs in dev_user and consents automatically. Loopback issuer only."
    )
    dev_user: str = Field("demo", description="The user development mode signs in.")
    console_roles: str = Field(
        "",
        description="Admin console roles: comma-separated `username=role`, role one of viewer, operator, admin "
        "(e.g. `alice=admin,bob=viewer`). Users not listed cannot sign in to the console; in development mode "
        "dev_user is an admin.",
    )
    console_group_roles: str = Field(
        "",
        description="Admin console roles from user groups: comma-separated `group=role` (e.g. "
        "`security=admin,finance=viewer`). A user's role is the highest of their username's entry in "
        "console_roles and their groups' entries here.",
    )
    dynamic_registration: bool = Field(False, description="Open RFC 7591 dynamic client registration.")
    client_id_metadata_documents: bool = Field(True, description="Accept https client_id URLs (CIMD).")
    cimd_fetch_timeout: float = Field(
        5.0, gt=0, le=30, description="Seconds a client metadata document fetch may take."
    )
    cimd_allow_loopback: bool = Field(False, description="Allow CIMD fetches from loopback hosts (tests only).")
    cache_staleness: float = Field(
        1.0, gt=0, le=30, description="Seconds a replica may serve a cached client/key/revocation view."
    )
    trust_forwarded_proto: bool = Field(False, description="Trust X-Forwarded-Proto from a TLS-terminating proxy.")
    server: Literal["uvicorn", "granian"] = Field(
        "uvicorn",
        description="The HTTP server `authz serve` runs (`--server` overrides): `uvicorn` (httptools, uvloop) or "
        "`granian` (Rust; install the `granian` extra). Same app, lifespan, graceful shutdown, workers and proxy "
        "headers (docs/performance.md, ASGI server).",
    )
    exchange_max_act_depth: int = Field(
        4, ge=1, le=16, description="Token exchange: the most actors an exchanged token's nested act chain may name."
    )
    exchange_token_ttl: int = Field(
        300,
        ge=30,
        le=3600,
        description="Token exchange: cap on an exchanged token's lifetime in seconds "
        "(it never outlives the subject token nor access_token_ttl).",
    )
    ssf_poll_wait: float = Field(
        20.0,
        ge=0,
        le=120,
        description="Shared Signals: longest time an RFC 8936 long poll is held open waiting for a revocation "
        "(seconds); a revocation answers the waiting poll at once.",
    )
    ssf_inactivity_timeout: int = Field(
        86400,
        ge=60,
        description="Shared Signals: a stream no receiver has polled or managed for this long is deleted (seconds).",
    )
    dpop_signing_alg_values: list[Literal["ES256", "ES384", "EdDSA", "RS256", "PS256"]] = Field(
        ["ES256", "EdDSA", "RS256", "PS256"],
        min_length=1,
        description="DPoP (RFC 9449): the proof algorithms the token endpoint accepts (asymmetric only; "
        "published as dpop_signing_alg_values_supported).",
    )
    dpop_nonce: bool = Field(
        False,
        description="DPoP: require a server-issued nonce in token-endpoint proofs (RFC 9449 §8; stateless, "
        "an encrypted timestamp every replica accepts).",
    )
    dpop_nonce_ttl: int = Field(300, ge=30, le=3600, description="DPoP: seconds a server nonce stays valid.")
    dpop_replica_nonces: bool = Field(
        False,
        description="DPoP: token-endpoint nonces name the replica (process) that issued them and only it "
        "accepts them, so each replica's in-memory jti cache suffices (no Redis or SQL write per proof). "
        "Implies dpop_nonce; a client that reaches another replica is asked for its nonce once.",
    )
    assertion_max_lifetime: int = Field(
        600, ge=60, le=3600, description="Longest exp - iat accepted for ID-JAG and trusted-issuer JWTs (seconds)."
    )
    license_rate_window: int = Field(
        60, ge=1, le=3600, description="Licensing: the rate-limit window in seconds (per key, per IP, misses per IP)."
    )
    license_rate_per_key: int = Field(
        600, ge=0, description="Licensing: key-authenticated requests per key per window (0: no limit)."
    )
    license_rate_per_ip: int = Field(
        1200, ge=0, description="Licensing: key-authenticated requests per client IP per window (0: no limit)."
    )
    license_rate_misses_per_ip: int = Field(
        30, ge=0, description="Licensing: unknown or malformed keys per client IP per window before 429 (0: no limit)."
    )
    license_sweep_interval: float = Field(
        60.0, gt=0, le=3600, description="Licensing: seconds between sweeps (dead machines, culls, expiring licenses)."
    )
    license_expiring_within: int = Field(
        7 * 86400, ge=3600, description="Licensing: license.expiring is sent this many seconds before expiry."
    )
    audit_tree: bool = Field(
        True,
        description="Add every audit record to the RFC 9162 Merkle tree (off only to measure its cost: "
        "records written with it off are covered by the hash chain alone).",
    )
    audit_checkpoint_dir: Path | None = Field(
        None,
        description="Directory outside the database where signed audit checkpoints are also written "
        "(`checkpoint` = the latest, `checkpoints/<size>` = each). Empty: data_dir/audit-checkpoints.",
    )
    audit_checkpoint_every: int = Field(
        1000, ge=1, description="Sign an audit checkpoint after this many new records (or audit_checkpoint_interval)."
    )
    audit_checkpoint_interval: float = Field(
        60.0, gt=0, description="Seconds after which new audit records get a signed checkpoint even below the count."
    )
    audit_origin: str = Field(
        "",
        description="The audit log's checkpoint origin and note key name. Empty: the issuer's host and path + /audit.",
    )
    audit_retention_days: int = Field(
        183,
        ge=1,
        description="Minimum days audit records are kept; `authz audit purge` refuses anything younger "
        "(AI Act Art. 19/26(6): at least six months).",
    )

    @field_validator("console_roles", "console_group_roles")
    @classmethod
    def _console_roles_shape(cls, value: str) -> str:
        parse_console_roles(value)  # ValueError names the bad entry
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_shape(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment (RFC 8414 §2)")
        if value.endswith("/"):
            raise ValueError("issuer must not end with '/': clients compare it byte for byte")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls), _RunningIssuerSource(settings_cls))

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'authz.db').resolve()}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"

    @property
    def log_origin(self) -> str:
        """The checkpoint origin (c2sp.org/tlog-checkpoint: "a unique identifier for the log")."""
        if self.audit_origin:
            return self.audit_origin
        parts = urlsplit(self.issuer)
        return f"{parts.netloc.lower()}{parts.path}/audit"

    @property
    def issuer_is_loopback(self) -> bool:
        return is_loopback_url(self.issuer)

    @property
    def path_prefix(self) -> str:
        """The issuer's path ("" for ``https://as``, "/t1" for ``https://as/t1``): endpoints live under it."""
        return urlsplit(self.issuer).path

    @property
    def admin_resource(self) -> str:
        """The admin API's resource identifier (RFC 8707): ``{issuer}/api/v1`` with a lowercase scheme and host."""
        return _normalized(self.endpoint(ADMIN_API_PATH))

    @property
    def console_resource(self) -> str:
        """The admin console's audience (RFC 8707): ``{issuer}/console``, lowercase scheme and host."""
        return _normalized(self.endpoint(CONSOLE_PATH))

    def endpoint(self, path: str) -> str:
        """An absolute URL under the issuer (endpoints live beside it, RFC 8414 §2)."""
        return self.issuer + path


@functools.lru_cache(maxsize=64)
def _normalized(url: str) -> str:
    """``url`` with a lowercase scheme and host (read on every token request: computed once per URL)."""
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``AUTHZ_CONFIG`` (top-level keys are setting names)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("AUTHZ_CONFIG")
        if not path:
            return {}
        with open(path, "rb") as fh:
            return tomllib.load(fh)


RUNNING_ISSUER_FILE = "issuer"


class _RunningIssuerSource(PydanticBaseSettingsSource):
    """The issuer of the server last started on this data directory without a configured issuer
    (``authz serve --port P``, ``authz demo``): the file ``<data_dir>/issuer`` they write. It comes
    last, so ``AUTHZ_ISSUER`` or the TOML file always win; it lets a CLI command run against the demo's
    data directory name the demo's real issuer (and admin API resource) whatever its port."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data_dir = os.environ.get("AUTHZ_DATA_DIR") or _TomlSource(self.settings_cls)().get("data_dir") or ".authz"
        path = Path(data_dir) / RUNNING_ISSUER_FILE
        try:
            issuer = path.read_text(encoding="utf-8").strip()
        except OSError:
            return {}
        return {"issuer": issuer} if issuer and is_loopback_url(issuer) else {}


def issuer_configured() -> bool:
    """Whether the operator set the issuer (environment or TOML file), rather than the default."""
    return "AUTHZ_ISSUER" in os.environ or "issuer" in _TomlSource(Settings)()


def record_running_issuer(data_dir: Path, issuer: str) -> None:
    """Write ``<data_dir>/issuer`` (see :class:`_RunningIssuerSource`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RUNNING_ISSUER_FILE).write_text(issuer + "\n", encoding="utf-8")


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_safe(settings: Settings) -> None:
    """Refuse settings that would run an unsafe server (called before serving).

    OAuth 2.1 §1.5: "all communications with the authorization server MUST use TLS" — a plain-HTTP
    issuer is accepted only on loopback, where development happens.
    """
    if urlsplit(settings.issuer).scheme != "https" and not settings.issuer_is_loopback:
        raise UnsafeSettingsError(
            f"issuer {settings.issuer!r} is plain HTTP on a non-loopback host: set AUTHZ_ISSUER to an https:// URL"
        )
    if not settings.key_encryption_key and not settings.issuer_is_loopback:
        raise UnsafeSettingsError(
            "no key-encryption key: set AUTHZ_KEY_ENCRYPTION_KEY "
            "(generate one with `authz keys generate-kek`) before serving a non-loopback issuer"
        )
    if settings.dev_mode and not settings.issuer_is_loopback:
        raise UnsafeSettingsError("development mode signs users in automatically: it runs only on a loopback issuer")
