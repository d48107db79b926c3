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


def test_the_filter_rewrites_granian_access_records() -> None:
    """granian passes one mapping with the path and the query apart; the request line gets the
    redacted query back on ``path``, as uvicorn's shows it."""
    from authz.cli.asgi_server import GRANIAN_ACCESS_FORMAT, granian_log_config

    args = {"addr": "127.0.0.1", "method": "GET", "path": "/authorize", "query_string": "state=s&code=live",
            "protocol": "HTTP/1.1", "status": 400, "dt_ms": 1.5}  # fmt: skip
    record = logging.LogRecord("granian.access", logging.INFO, __file__, 1, GRANIAN_ACCESS_FORMAT, (args,), None)
    assert logredact.RedactCredentials().filter(record)
    assert record.getMessage() == '127.0.0.1 - "GET /authorize?state=s&code=[redacted] HTTP/1.1" 400 1.5ms'
    plain = logging.LogRecord(
        "granian.access", logging.INFO, __file__, 1, GRANIAN_ACCESS_FORMAT, ({**args, "query_string": ""},), None
    )
    assert logredact.RedactCredentials().filter(plain)
    assert '"GET /authorize HTTP/1.1"' in plain.getMessage()
    with_query = {**args, "path": "/authorize?state=s&code=live"}  # granian 2.8 puts the query on the path too
    both = logging.LogRecord("granian.access", logging.INFO, __file__, 1, GRANIAN_ACCESS_FORMAT, (with_query,), None)
    assert logredact.RedactCredentials().filter(both)
    assert '"GET /authorize?state=s&code=[redacted] HTTP/1.1"' in both.getMessage()
    assert granian_log_config("info")["loggers"]["granian.access"]["filters"] == ["redact_credentials"]
