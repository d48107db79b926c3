"""Scope policies in Cedar: the security team's files and a small loader, evaluator and toolset.

A leaf package (stdlib + cedarpy). The authorization server builds a `Request` at every token
issuance and grants exactly `bundle.decide(request).permitted`. See README.md in this directory.
"""

from pathlib import Path

from .bundle import PolicyBundle, is_loopback
from .loader import build, load
from .model import Context, Decision, PolicyError, Principal, Problem, Request, ScopeDecision
from .tools import DiffResult, ExampleResult, diff, fmt, generate_server_actions, run_examples

__all__ = [
    "DEFAULT_DIR",
    "Context",
    "Decision",
    "DiffResult",
    "ExampleResult",
    "PolicyBundle",
    "PolicyError",
    "Principal",
    "Problem",
    "Request",
    "ScopeDecision",
    "build",
    "diff",
    "fmt",
    "generate_server_actions",
    "is_loopback",
    "load",
    "load_default",
    "run_examples",
]

DEFAULT_DIR = Path(__file__).resolve().parent
"""The embedded default policy set (this package's directory): permits the `authz demo`."""


def load_default() -> PolicyBundle:
    """The embedded default policy set."""
    return load(DEFAULT_DIR)
