"""check / fmt: the shipped set is clean; broken sets are rejected with file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

import policies
from policies.__main__ import main


def test_shipped_directory_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(policies.DEFAULT_DIR)]) == 0
    assert "valid and formatted" in capsys.readouterr().out


def test_shipped_examples_pass_via_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(policies.DEFAULT_DIR)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert "PASS DENY/delegation_too_deep.json: DENY by base.forbid-deep-delegation" in out


def problems(directory: Path) -> list[str]:
    with pytest.raises(policies.PolicyError) as info:
        policies.load(directory)
    return [str(p) for p in info.value.problems]


def test_syntax_error_located_in_its_file(policy_dir: Path) -> None:
    (policy_dir / "servers" / "x.cedar").write_text('@id("x")\npermit (principal, action, resource)\nwhen { 1 + };\n')
    assert problems(policy_dir) == ["servers/x.cedar:3:12: syntax error: unexpected token `}`"]


def test_unknown_entity_type_located(policy_dir: Path) -> None:
    (policy_dir / "servers" / "x.cedar").write_text(
        '@id("x")\npermit (\n  principal is Authz::Robot,\n  action,\n  resource\n);\n'
    )
    found = problems(policy_dir)
    assert "servers/x.cedar:3:16: unrecognized entity type `Authz::Robot`" in found


def test_undeclared_attribute_located(policy_dir: Path) -> None:
    text = (policy_dir / "servers" / "demo.cedar").read_text()
    (policy_dir / "servers" / "demo.cedar").write_text(
        text + '\n@id("x")\npermit (principal, action, resource)\nwhen { principal.nick == "x" };\n'
    )
    line = text.count("\n") + 4
    found = problems(policy_dir)
    assert found  # one per principal type the policy may apply to
    for problem in found:
        assert problem.startswith(f"servers/demo.cedar:{line}:18: attribute `nick` on entity type")


def test_missing_and_duplicate_ids_rejected(policy_dir: Path) -> None:
    (policy_dir / "servers" / "x.cedar").write_text(
        'permit (principal, action, resource);\n\n@id("demo.loopback-tools")\nforbid (principal, action, resource);\n'
    )
    found = problems(policy_dir)
    assert found[0].startswith("servers/x.cedar:1:1: policy policy0 has no @id")
    assert found[1].startswith(
        'servers/x.cedar:3:1: duplicate @id("demo.loopback-tools"), first at servers/demo.cedar:'
    )


def test_scope_not_offered_by_declared_server(policy_dir: Path) -> None:
    (policy_dir / "servers" / "x.cedar").write_text(
        '@id("x")\npermit (\n  principal,\n  action,\n  resource in Authz::McpServer::"https://pay.example/mcp"\n)\n'
        'when { resource.name == "payments:reed" };\n'
    )
    assert problems(policy_dir) == [
        'servers/x.cedar:1:1: scope "payments:reed" is not declared for https://pay.example/mcp (policy x)'
    ]


def test_schema_error_located(policy_dir: Path) -> None:
    schema = policy_dir / "schema.cedarschema"
    schema.write_text(schema.read_text().replace("uri: String,", "uri: Strin,"))
    found = problems(policy_dir)
    assert len(found) == 1
    assert found[0].startswith("schema.cedarschema:") and "Strin" in found[0]
    line = int(found[0].split(":")[1])
    assert "uri: Strin," in schema.read_text().splitlines()[line - 1]


def test_bad_entities_json_located(policy_dir: Path) -> None:
    (policy_dir / "entities.json").write_text('[\n  {"uid": {"type": "Authz::Team", "id": "x"},\n]')
    found = problems(policy_dir)
    assert found[0].startswith("entities.json:3:")


def test_cli_check_prints_file_line_col(policy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (policy_dir / "servers" / "x.cedar").write_text('@id("x")\npermit (principal, action, resource)\nwhen { 1 + };\n')
    assert main(["check", str(policy_dir)]) == 1
    assert f"{policy_dir}/servers/x.cedar:3:12: syntax error" in capsys.readouterr().err


def test_fmt_check_detects_unformatted_file(policy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", str(policy_dir)]) == 0
    (policy_dir / "servers" / "x.cedar").write_text('@id("x")\npermit(principal,action,resource);\n')
    assert main(["fmt", "--check", str(policy_dir)]) == 1
    assert "servers/x.cedar: not formatted" in capsys.readouterr().err
    assert any("not formatted" in p for p in problems(policy_dir))
    assert main(["fmt", str(policy_dir)]) == 0
    assert main(["fmt", "--check", str(policy_dir)]) == 0
    assert (policy_dir / "servers" / "x.cedar").read_text() == policies.fmt(
        '@id("x")\npermit(principal,action,resource);\n'
    )


def test_from_sources_equals_load(bundle: policies.PolicyBundle) -> None:
    again = policies.build(bundle.schema_text, bundle.sources, bundle.entities_json)
    assert again.policy_ids == bundle.policy_ids
    assert {k: str(v) for k, v in again.origins.items()} == {k: str(v) for k, v in bundle.origins.items()}
