"""``authz usage``: usage and cost from the rollups, as an aligned table, JSON or CSV.

Registered by one line in ``authz/cli/__init__.py``: ``metering_cli.register(sub)``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from authz.metering.usage import GRANULARITIES, GROUPS, UsageQueryError, usage

COLUMNS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "unpriced",
)
NUMERIC = frozenset({*COLUMNS, "latency_ms", "cost_pusd", "priced"})


def _when(text: str) -> datetime:
    """A date (``2026-12-01``) or an RFC 3339 date-time; naive values are UTC."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or date-time: {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _groups(text: str) -> list[str]:
    groups = [g.strip() for g in text.split(",") if g.strip()]
    for g in groups:
        if g not in GROUPS:
            raise argparse.ArgumentTypeError(f"cannot group by {g!r}; choose from {', '.join(GROUPS)}")
    return groups


def _filter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or name not in GROUPS:
        raise argparse.ArgumentTypeError(f"expected DIMENSION=VALUE with DIMENSION in {', '.join(GROUPS)}")
    return name, value


def register(sub: Any) -> None:
    p = sub.add_parser("usage", help="usage and cost per period, grouped (from the metering rollups)")
    p.add_argument("--from", dest="start", type=_when, help="start (date or RFC 3339; default: 24 h ago)")
    p.add_argument("--to", dest="end", type=_when, help="end, exclusive (default: now)")
    p.add_argument("--granularity", choices=list(GRANULARITIES), default="day")
    p.add_argument(
        "--group-by",
        type=_groups,
        default=[],
        metavar="DIMS",
        help=f"comma-separated: {', '.join(GROUPS)}",
    )
    p.add_argument(
        "--filter", type=_filter, action="append", default=[], metavar="DIM=VALUE", help="repeatable; ORed per DIM"
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_usage)


def render_table(rows: Sequence[dict[str, Any]], headers: Sequence[str]) -> str:
    """Aligned columns: text left, numbers right; empty dimension values shown as ``-``."""
    cells = [[("-" if row.get(h) in ("", None) else str(row.get(h))) for h in headers] for row in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(w) if h in NUMERIC else v.ljust(w) for v, w, h in zip(values, widths, headers, strict=True)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def format_rows(rows: Sequence[dict[str, Any]], group_by: Sequence[str], fmt: str) -> str:
    headers = ["period", *group_by, *COLUMNS]
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=headers, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if not rows:
        return "no usage in this range"
    return render_table(rows, headers)


def cmd_usage(args: argparse.Namespace) -> int:
    from authz.core.settings import Settings
    from authz.preflight import require_database
    from authz.storage.db import make_engine

    end = args.end or datetime.now(UTC)
    start = args.start or end - timedelta(days=1)
    filters: dict[str, list[str]] = {}
    for name, value in args.filter:
        filters.setdefault(name, []).append(value)
    settings = Settings()
    require_database(settings)  # an absent or unmigrated database is one line, and is not created
    engine = make_engine(settings.sqlalchemy_url)
    try:
        rows = usage(engine, start, end, args.granularity, args.group_by, filters)
    except UsageQueryError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(format_rows(rows, args.group_by, args.format))
    return 0
