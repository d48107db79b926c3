"""The access-log filter: credential query parameters are redacted, everything else is left as it was."""

from __future__ import annotations

import logging

import pytest

from guard import logredact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/mcp", "/mcp"),
        ("/mcp?x=1", "/mcp?x=1"),
        ("/mcp?access_token=abc", "/mcp?access_token=[redacted]"),
        ("/mcp?a=1&access_token=abc&b=2", "/mcp?a=1&access_token=[redacted]&b=2"),
        ("/mcp?ACCESS_TOKEN=abc", "/mcp?ACCESS_TOKEN=[redacted]"),
        ("/mcp?access%5Ftoken=abc", "/mcp?access%5Ftoken=[redacted]"),
        ("/cb?code=c&state=s", "/cb?code=[redacted]&state=s"),
        ("/t?client_secret=s&refresh_token=r", "/t?client_secret=[redacted]&refresh_token=[redacted]"),
        ("/t?subject_token=t&assertion=a", "/t?subject_token=[redacted]&assertion=[redacted]"),
        ("/x?tokenish=1&token", "/x?tokenish=1&token"),
        ("/x?token=a#frag", "/x?token=[redacted]#frag"),
    ],
)  # fmt: skip
def test_redact_query(text: str, expected: str) -> None:
    assert logredact.redact_query(text) == expected


def test_the_filter_rewrites_uvicorn_access_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/mcp?access_token=live", "1.1", 400), None,
    )  # fmt: skip
    assert logredact.RedactCredentials().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /mcp?access_token=[redacted] HTTP/1.1" 400'
    config = logredact.uvicorn_log_config()
    assert config["loggers"]["uvicorn.access"]["filters"] == ["redact_credentials"]
