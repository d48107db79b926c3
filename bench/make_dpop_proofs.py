"""Pre-sign DPoP proofs for a load run against a token endpoint (each needs a unique jti).

    python bench/make_dpop_proofs.py TOKEN_URL COUNT OUT.txt [--alg ES256] [--nonce NONCE]

One proof per line, all by one fresh key (one agent), ``iat`` now: the server accepts them for
300 s, so sign them right before the run. wrk cannot sign, so bench/dpop.lua replays this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dpop import DpopKey


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("token_url")
    p.add_argument("count", type=int)
    p.add_argument("out")
    p.add_argument("--alg", default="ES256")
    p.add_argument("--nonce", default=None, help="the server's DPoP nonce (RFC 9449 §8), when it asks for one")
    a = p.parse_args()
    key = DpopKey.generate(a.alg)
    with open(a.out, "w") as out:
        for _ in range(a.count):
            out.write(key.proof("POST", a.token_url, nonce=a.nonce) + "\n")


if __name__ == "__main__":
    main()
