"""What an operator must fix before the server can run, each said in one line with what to run.

The checks behind ``authz doctor`` and the ``authz`` command's error lines: settings, the
key-encryption key (well-formed, and the one the stored signing keys were encrypted with), the
database (driver installed, reachable, migrated), Redis, the policy set, the optional extras. Each
check returns a :class:`Check`; :func:`explain` turns a failure raised anywhere in a command (a
missing driver, an unreachable or unmigrated database, the wrong key) into a :class:`SetupError`
whose text is that one line.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from authz.core.settings import Settings

EXTRAS = {"postgres": "psycopg", "redis": "redis", "mcp": "mcp", "granian": "granian"}
KEEP_KEK = "generate one once with `authz keys generate-kek` and keep it in your secret store"


class SetupError(Exception):
    """Something the operator must fix; ``str()`` is one line saying what is wrong and what to run."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    optional: bool = False  # a failure here does not fail `authz doctor` (e.g. an extra not needed)

    def line(self) -> str:
        mark = "ok  " if self.ok else ("--  " if self.optional else "FAIL")
        return f"{mark} {self.name:14} {self.detail}"


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def needs_extra(extra: str, why: str) -> SetupError:
    return SetupError(f"{why} needs the `{extra}` extra, which is not installed: pip install 'authz[{extra}]'")


def _db_label(settings: Settings) -> str:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        return url.split("///", 1)[-1]
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def explain(exc: BaseException, settings: Settings | None = None) -> SetupError | None:
    """The one-line :class:`SetupError` for a known set-up failure, or None for anything else."""
    if isinstance(exc, SetupError):
        return exc
    if isinstance(exc, ModuleNotFoundError):
        root = (exc.name or "").split(".")[0]
        extra = next((e for e, m in EXTRAS.items() if m == root), None)
        if extra == "postgres":
            return needs_extra("postgres", "AUTHZ_DATABASE_URL is PostgreSQL, and its driver")
        if extra == "redis":
            return needs_extra("redis", "AUTHZ_REDIS_URL")
        if extra == "mcp":
            return needs_extra("mcp", "this command (the MCP SDK)")
        if extra == "granian":
            return needs_extra("granian", "`authz serve --server granian` (AUTHZ_SERVER=granian)")
        return None
    try:
        from cryptography.exceptions import InvalidTag
        from sqlalchemy.exc import OperationalError, ProgrammingError
    except ModuleNotFoundError:  # pragma: no cover - core dependencies
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        name = "AUTHZ_" + "_".join(str(p) for p in first["loc"]).upper()
        return SetupError(f"setting {name}: {first['msg']} (docs/configuration.md lists every setting)")
    if isinstance(exc, InvalidTag):
        return SetupError(
            "AUTHZ_KEY_ENCRYPTION_KEY is not the key the stored signing keys were encrypted with: set it back to "
            "that key (`authz doctor` checks it); a key is generated once and kept, never per shell"
        )
    if isinstance(exc, OperationalError | ProgrammingError):
        text = str(exc.orig if getattr(exc, "orig", None) is not None else exc).strip().splitlines()[0]
        where = _db_label(settings) if settings is not None else "the database"
        if "no such table" in text or ("does not exist" in text and "relation" in text):
            return SetupError(f"the database at {where} is not migrated ({text}): run `authz migrate`")
        missing_db = re.search(r'database "([^"]+)" does not exist', text)
        if missing_db:
            return SetupError(
                f'database "{missing_db.group(1)}" does not exist at {where}: create it '
                f"(createdb {missing_db.group(1)}), then run `authz migrate`"
            )
        return SetupError(f"cannot reach the database at {where} ({text}): check AUTHZ_DATABASE_URL and that it runs")
    return None


def kek_text(settings: Settings) -> str:
    """The configured key (or the development key file's) checked for shape. Raises SetupError."""
    from authz.core.crypto import Keyring, load_or_create_kek

    if settings.key_encryption_key:
        text = settings.key_encryption_key
    else:
        path = settings.data_dir / "kek"
        if not path.exists():
            if not settings.issuer_is_loopback:
                raise SetupError(f"AUTHZ_KEY_ENCRYPTION_KEY is not set: {KEEP_KEK}")
            return ""  # created with the database on first start (loopback development only)
        text = load_or_create_kek("", settings.data_dir)
    try:
        Keyring.from_text(text)
    except (ValueError, TypeError):
        raise SetupError(f"AUTHZ_KEY_ENCRYPTION_KEY is malformed (not 32 bytes of base64url): {KEEP_KEK}") from None
    return text


def require_database(settings: Settings) -> None:
    """The database exists and is at the newest revision. Never creates an empty SQLite file."""
    import migrations

    url = settings.sqlalchemy_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        raise SetupError(
            f"no database at {_db_label(settings)}: run `authz migrate` (or `authz serve`, which migrates)"
        )
    try:
        at = migrations.current(url)
    except Exception as exc:
        raise (explain(exc, settings) or exc) from None
    head = migrations.head()
    if at != head:
        state = "empty" if at is None else f"at revision {at}, the newest is {head}"
        raise SetupError(f"the database at {_db_label(settings)} is not migrated ({state}): run `authz migrate`")


def _run(name: str, fn: Callable[[], str], optional: bool = False) -> Check:
    try:
        return Check(name, True, fn(), optional)
    except Exception as exc:
        problem = explain(exc)
        return Check(name, False, str(problem) if problem else f"{type(exc).__name__}: {exc}", optional)


def checks(settings: Settings) -> Iterator[Check]:
    """Every check ``authz doctor`` prints, in order; later ones are skipped when the database is down."""
    yield Check("settings", True, f"issuer {settings.issuer}" + (" (development mode)" if settings.dev_mode else ""))
    yield _run("kek", lambda: _kek(settings))
    database = _run("database", lambda: _database(settings))
    yield database
    if database.ok:
        yield _run("signing keys", lambda: _keys(settings))
    if settings.redis_url:
        yield _run("redis", lambda: _redis(settings))
    yield _run("policies", lambda: _policies(settings))
    for extra, module in EXTRAS.items():
        needed = (
            (extra == "postgres" and settings.sqlalchemy_url.startswith("postgresql"))
            or (extra == "redis" and bool(settings.redis_url))
            or (extra == "granian" and settings.server == "granian")
        )
        have = installed(module)
        what = "installed" if have else f"not installed (pip install 'authz[{extra}]')"
        use = {"postgres": "PostgreSQL driver", "redis": "Redis client", "mcp": "authz demo, resource_server.mcp",
               "granian": "HTTP server for `authz serve --server granian`"}  # fmt: skip
        yield Check(f"extra {extra}", have, f"{what}: {use[extra]}", optional=not needed)


def _kek(settings: Settings) -> str:
    text = kek_text(settings)
    if not text:
        return f"none yet: a development key is created in {settings.data_dir / 'kek'} on first start"
    source = "AUTHZ_KEY_ENCRYPTION_KEY" if settings.key_encryption_key else str(settings.data_dir / "kek")
    return f"well-formed (from {source})"


def _database(settings: Settings) -> str:
    if settings.sqlalchemy_url.startswith("postgresql") and not installed("psycopg"):
        raise needs_extra("postgres", "AUTHZ_DATABASE_URL is PostgreSQL, and its driver")
    require_database(settings)
    import migrations

    return f"{_db_label(settings)} reachable, migrated (revision {migrations.head()})"


def _keys(settings: Settings) -> str:
    from authz.core.crypto import Keyring
    from authz.storage.db import make_engine
    from authz.storage.sql import SqlStore

    text = kek_text(settings)
    store = SqlStore(make_engine(settings.sqlalchemy_url))
    try:
        rows = store.list_keys()
        if not rows:
            return "none yet: created on first start"
        if not text:
            raise SetupError(f"signing keys are stored but there is no key-encryption key: {KEEP_KEK}")
        keyring = Keyring.from_text(text)
        for row in rows:
            keyring.decrypt(row.private_encrypted, row.kid.encode())
        return f"{len(rows)} stored, all decrypt with this key-encryption key"
    finally:
        store.engine.dispose()


def _redis(settings: Settings) -> str:
    if not installed("redis"):
        raise needs_extra("redis", "AUTHZ_REDIS_URL")
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SetupError(
            f"cannot reach Redis at {settings.redis_url.split('@')[-1]} ({exc}): check AUTHZ_REDIS_URL"
        ) from None
    finally:
        client.close()
    return f"{settings.redis_url.split('@')[-1]} answers"


def _policies(settings: Settings) -> str:
    return policy_line(settings)


def policy_line(settings: Settings) -> str:
    """The active policy set in one line (the startup line of ``authz serve`` and ``authz doctor``)."""
    from authz.policy.engine import PolicyEngine
    from authz.storage.db import make_engine
    from authz.storage.sql import SqlStore

    store = SqlStore(make_engine(settings.sqlalchemy_url)) if settings.policies == "db" else None
    try:
        return PolicyEngine.from_setting(settings.policies, store).describe()
    except Exception as exc:
        raise SetupError(f"AUTHZ_POLICIES={settings.policies} does not load: {str(exc).splitlines()[0]}") from None
    finally:
        if store is not None:
            store.engine.dispose()


def verify_keys(settings: Settings) -> None:
    """Before serving: the stored signing keys decrypt with the configured key. Raises SetupError."""
    try:
        _keys(settings)
    except Exception as exc:
        raise (explain(exc, settings) or exc) from None
