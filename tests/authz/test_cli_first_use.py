"""The first steps off the demo, from the command line: registering a server says what happens next and
writes its starter policy; users carry groups; a bad argument is one line, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import policies
from authz.cli import main
from policies import Context, Principal, Request


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    for name in ("AUTHZ_DATABASE_URL", "AUTHZ_CONFIG", "AUTHZ_POLICIES", "AUTHZ_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


NOTES = "https://notes.example.com/mcp"


def test_resources_add_says_the_builtin_set_permits_nothing_there_and_what_to_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "resources", "add", NOTES, "--scopes", "notes:read notes:write")
    assert code == 0
    assert "permits none of notes:read notes:write" in out and "invalid_scope" in out
    assert f'authz policy starter --server {NOTES} --scopes "notes:read notes:write"' in out


def test_resources_add_writes_a_starter_policy_that_permits_the_scopes(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "resources", "add", NOTES, "--scopes", "notes:read,notes:write", "--policy-dir", "pol")
    assert code == 0, out
    assert "wrote pol/servers/notes.cedar" in out and f"AUTHZ_POLICIES={env / 'pol'}" in out
    bundle = policies.load(env / "pol")
    assert "notes.starter" in bundle.policy_ids and "base.forbid-quarantined-agents" in bundle.policy_ids
    ask = Request(Principal("agent", "agt_1"), "c", NOTES, ("notes:read", "notes:write"), Context("client_credentials"))
    assert bundle.decide(ask).permitted == {"notes:read", "notes:write"}
    quarantined = Principal("agent", "agt_2", tags=("quarantined",))
    assert not bundle.decide(Request(quarantined, "c", NOTES, ("notes:read",), Context("client_credentials"))).permitted
    # with that set active, registering says the scopes are permitted; a second starter is refused
    monkeypatch.setenv("AUTHZ_POLICIES", str(env / "pol"))
    code, out, _ = run(capsys, "resources", "add", NOTES, "--scopes", "notes:read")
    assert code == 0 and "already permits notes:read" in out
    code, _, err = run(capsys, "policy", "starter", "--server", NOTES, "--scopes", "notes:read", "pol")
    assert code == 1 and "exists already" in err and "Traceback" not in err


def test_users_carry_groups_for_policies(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    code, out, _ = run(capsys, "users", "add", "alice", "--password-stdin", "--group", "finance")
    assert code == 0 and "groups finance" in out
    code, out, _ = run(capsys, "users", "set-groups", "alice", "--group", "finance", "--group", "ops")
    assert code == 0 and "groups finance,ops" in out
    assert "finance,ops" in run(capsys, "users", "list")[1]
    code, _, err = run(capsys, "users", "set-groups", "nobody", "--group", "x")
    assert code == 1 and err.count("\n") == 1 and "no user 'nobody'" in err
    code, _, err = run(capsys, "users", "set-groups", "alice", "--group", "bad group!")
    assert code == 1 and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--principal", "Agent::agt_1"],  # unquoted id: was a JSONDecodeError traceback
        ["--principal", 'Robot::"x"'],  # unknown kind: was int("...") of SystemExit's message
        ["--principal", 'Agent::"agt_1"', "--time", "yesterday"],
    ],
)
def test_policy_explain_with_a_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run(capsys, "policy", "explain", *args, "--resource", NOTES, "--scopes", "notes:read")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("authz policy: ")


def test_budgets_create_refuses_an_unknown_agent_or_team(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--agent", "--team"):
        code, out, err = run(capsys, "budgets", "create", flag, "nope", "--metric", "calls", "--limit", "5")
        assert code == 1 and out == "" and err.count("\n") == 1 and "no " in err and "'nope'" in err, err
        assert "list` shows" in err
    code, out, _ = run(capsys, "budgets", "list")
    assert code == 0 and "nope" not in out  # nothing was created


def test_cli_commands_find_the_issuer_of_the_server_running_on_their_data_dir(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``authz serve --port P`` and ``authz demo`` record their issuer in ``<data_dir>/issuer``; a command
    on the same data dir without AUTHZ_ISSUER names that issuer (its admin API resource, ...)."""
    from authz.core.settings import Settings, record_running_issuer

    assert Settings().issuer == "http://127.0.0.1:9100"
    record_running_issuer(env / "data", "http://127.0.0.1:9377")
    assert Settings().issuer == "http://127.0.0.1:9377"
    assert Settings().admin_resource == "http://127.0.0.1:9377/api/v1"
    monkeypatch.setenv("AUTHZ_ISSUER", "http://127.0.0.1:9500")
    assert Settings().issuer == "http://127.0.0.1:9500"  # the configured issuer always wins


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["agents", "create", "--name", "x"], "authz agents create"),
        (["agents", "list", "--team", "t", "--bogus"], "authz agents list"),
        (["serve", "--nope"], "authz serve"),
    ],
)
def test_an_unknown_option_names_the_subcommand_and_its_help(
    capsys: pytest.CaptureFixture[str], argv: list[str], prog: str
) -> None:
    """argparse blames the top-level command for an option only a subcommand's parser sees; the
    error names the subcommand that was typed and the ``--help`` to read, exit status 2."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.splitlines()[-1].startswith(f"{prog}: error: unrecognized arguments: ")
    assert err.rstrip().endswith(f"(see: {prog} --help)") and "Traceback" not in err
