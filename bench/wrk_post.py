"""One bounded ``wrk`` run POSTing a JSON body to a loopback URL (shared by the bench scripts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    non2xx: int
    socket_errors: int
    output: str


def wrk_post(
    url: str,
    body: Any,
    headers: Mapping[str, str],
    *,
    threads: int,
    connections: int,
    duration: int,
    header_file: tuple[str, str] | None = None,
) -> WrkResult:
    """POST ``body`` (JSON) with ``headers`` for ``duration`` seconds; the parsed wrk summary.

    ``header_file`` = (name, path): one value per request from the file's lines, each used once
    (e.g. DPoP proofs, which must not repeat); the threads take alternate lines.
    """
    text = body if isinstance(body, str) else json.dumps(body)  # a str is sent as is (a form body)
    lua = ["wrk.method = 'POST'", f"wrk.body = {json.dumps(text)}"]
    lua += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if header_file is not None:
        name, path = header_file
        lua += [
            "local counter = 0",
            "function setup(thread) counter = counter + 1; thread:set('id', counter) end",
            "function init(args)",
            "  lines, idx, n = {}, 0, 0",
            f"  for line in io.lines({json.dumps(path)}) do",
            f"    n = n + 1; if n % {threads} == (id - 1) then table.insert(lines, line) end",
            "  end",
            "end",
            "function request()",
            f"  idx = idx + 1; wrk.headers[{json.dumps(name)}] = lines[idx] or 'exhausted'",
            "  return wrk.format()",
            "end",
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(lua) + "\n")
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 30,
        ).stdout
    finally:
        os.unlink(f.name)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert rps and total, out
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        output=out,
    )
