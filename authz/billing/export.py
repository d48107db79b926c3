"""A finalized invoice (or a preview) as CSV: one row per line and per agent group, credits, the total."""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = (
    "invoice",
    "number",
    "customer",
    "period_start",
    "period_end",
    "currency",
    "component",
    "label",
    "group",
    "quantity",
    "amount",
    "cost_usd",
    "margin",
)


def invoice_csv(doc: dict[str, Any]) -> str:
    """One row per line and group (agent), plus credit and total rows; amounts as decimal text."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    head = [
        doc.get("id", ""),
        doc.get("number", ""),
        doc["customer_id"],
        doc["period"]["start"],
        doc["period"]["end"],
        doc["currency"],
    ]
    for line in doc["lines"]:
        w.writerow(
            [
                *head,
                line["component"],
                line["label"],
                "",
                line["quantity"],
                line["amount"],
                line["cost_usd"],
                line.get("margin", ""),
            ]
        )
        if line["group_by"] == "agent":
            for g in line["groups"]:
                w.writerow([*head, line["component"], line["label"], g["key"], g["quantity"], g["amount"], "", ""])
    for c in doc["credits_applied"]:
        w.writerow([*head, "credit", c["credit_id"], "", "", "-" + c["amount"], "", ""])
    w.writerow([*head, "total", "", "", "", doc["total"], doc["cost"]["model_cost_usd"], doc["cost"]["margin"] or ""])
    return out.getvalue()
