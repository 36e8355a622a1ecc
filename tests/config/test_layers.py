"""The house's shape (docs/ARCHITECTURE.md): the layers' contracts fail on an import that points up, and no module
imports a project module inside a function to dodge a cycle."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("numeric", "labeling", "quality", "routing", "api", "exchange", "pages", "backoffice", "demo", "config")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is a dev requirement (make install)")
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("labeling/selectors.py", "from routing.models import Assignment", "labeling is not allowed to import routing"),
        ("quality/selectors.py", "from routing import sql", "quality is not allowed to import routing"),
        ("routing/selectors.py", "from api import base", "routing is not allowed to import api"),
        ("exchange/reading.py", "from pages import site", "exchange is not allowed to import pages"),
        ("api/base.py", "from backoffice import base", "api is not allowed to import backoffice"),
        ("numeric/sampling.py", "import django", "numeric is not allowed to import django"),
    ],
)
def test_an_import_that_points_up_fails_the_contracts(tmp_path: Path, module: str, line: str, broken: str) -> None:
    root = _copy(tmp_path)
    assert _lint_imports(root).returncode == 0  # the tree as it is keeps every contract
    target = root / module
    # Inside a function, as a cycle would be dodged: the contracts see those imports too.
    target.write_text(target.read_text() + f"\n\ndef _upward() -> None:\n    {line}  # noqa\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout


def _local_project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every project import inside a function that no comment before it (in the function) explains."""
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [alias.name for alias in inner.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in PACKAGES:
                    continue
                above = lines[node.lineno : inner.lineno - 1]  # the function's lines before the import
                if not any(line.strip().startswith("#") for line in above):
                    found.append((inner.lineno, name))
    return found


def test_no_project_module_is_imported_inside_a_function_without_a_reason() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}:{line}": module
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        for line, module in _local_project_imports(path)
    }
    assert offenders == {}
