"""Pre-sign private_key_jwt client assertions for a load run (each needs a unique jti).

    python bench/make_assertions.py KEY.json CLIENT_ID AUDIENCE COUNT OUT.txt

One assertion per line; they live for ``--lifetime`` seconds (default 600), so sign them right
before the run. wrk cannot sign ES256 itself, so the load script replays this file in order.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("key_file")
    p.add_argument("client_id")
    p.add_argument("audience")
    p.add_argument("count", type=int)
    p.add_argument("out")
    p.add_argument("--lifetime", type=int, default=600)
    a = p.parse_args()
    key = ECKey.import_key(json.load(open(a.key_file)))
    now = int(time.time())
    header = {"alg": "ES256", "kid": key.kid}
    with open(a.out, "w") as fh:
        for _ in range(a.count):
            claims = {"iss": a.client_id, "sub": a.client_id, "aud": a.audience, "iat": now,
                      "exp": now + a.lifetime, "jti": uuid.uuid4().hex}  # fmt: skip
            fh.write(jwt.encode(header, claims, key) + "\n")


if __name__ == "__main__":
    main()
