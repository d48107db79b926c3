from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import policies


@pytest.fixture(scope="session")
def bundle() -> policies.PolicyBundle:
    return policies.load_default()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped policy directory."""
    dest = tmp_path / "policies"
    shutil.copytree(policies.DEFAULT_DIR, dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dest
