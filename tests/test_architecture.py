"""The import contracts in .importlinter hold (CI runs `make test`, so a broken contract fails the build)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # grimp reads the package from the path; no cache, so an edited tree is always read afresh.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    """The contracts bite: labeling (below quality) importing quality is refused."""
    shutil.copytree(ROOT / "sapien", tmp_path / "sapien", ignore=shutil.ignore_patterns("static", "templates", "translations", "__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    packs = tmp_path / "sapien" / "labeling" / "packs.py"
    packs.write_text(packs.read_text() + "\nfrom sapien.quality import reputation  # noqa: E402\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "sapien.labeling.packs -> sapien.quality.reputation" in result.stdout
