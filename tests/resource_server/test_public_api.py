import subprocess
import sys

import resource_server


def test_public_surface() -> None:
    assert resource_server.__all__ == [
        "BudgetHook",
        "CompositeHook",
        "InvalidToken",
        "McpCall",
        "Mode",
        "NoTokenError",
        "NoopHook",
        "Refusal",
        "ResourceServerConfig",
        "ResourceServerMiddleware",
        "ScopePolicy",
        "TokenInfo",
        "TokenUseHook",
        "TokenUser",
        "TokenVerifier",
        "UpstreamUnavailable",
        "UsageReporter",
        "UseContext",
        "UseOutcome",
        "build_verifier",
        "current_token",
        "metadata_document",
        "metadata_url",
        "record_outcome",
        "record_tokens",
        "record_usage",
    ]
    for name in resource_server.__all__:
        assert hasattr(resource_server, name)


def test_never_imports_authz_httpx_or_mcp() -> None:
    code = (
        "import sys, resource_server, resource_server.middleware, resource_server.verifier;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('authz', 'httpx', 'mcp'));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
