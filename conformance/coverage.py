"""Prints the requirement manifest's coverage: each id, the tests that prove it (or PENDING), its spec URL.

Usage: ``python -m conformance.coverage``.
"""

from __future__ import annotations

from conformance.requirements import REQUIREMENTS
from conformance.test_manifest import tagged_requirements


def main() -> None:
    """Print the coverage table: id, state (tagged/PENDING), section URL."""
    tagged = tagged_requirements()
    for rid, req in REQUIREMENTS.items():
        where = ", ".join(sorted({loc.rsplit(":", 1)[0] for loc in tagged.get(rid, [])})) or "PENDING"
        print(f"{rid:<42} {where}\n{'':<42} {req.url}")


if __name__ == "__main__":
    main()
