"""Plugins import only porter's declared API (``porter.api``): the rest of the core may change under them."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import porter.api

ROOT = Path(__file__).resolve().parents[2]


def _porter_imports(path: Path):
    """(line, module) for every import of porter or one of its submodules in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "porter" or name.startswith("porter."):
                yield node.lineno, name, node


def test_plugins_import_only_the_declared_api():
    offenders = []
    # builtins are registered like third-party plugins, and written like them: they keep to the API too
    for path in sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "porter" / "builtin").rglob("*.py")]):
        for line, module, node in _porter_imports(path):
            if module != "porter.api":
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            elif isinstance(node, ast.ImportFrom):
                unknown = [a.name for a in node.names if a.name not in porter.api.__all__]
                if unknown:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {unknown} (not in porter.api)")
    assert not offenders, "plugins reach past porter.api:\n" + "\n".join(offenders)


def test_the_api_exports_what_it_declares():
    missing = [name for name in porter.api.__all__ if not hasattr(porter.api, name)]
    assert not missing
    assert len(set(porter.api.__all__)) == len(porter.api.__all__)


def test_the_boundary_check_sees_a_reach_into_the_core(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from porter.workspace import Workspace\nimport porter.cli.main\n")
    assert [m for _, m, _ in _porter_imports(bad)] == ["porter.workspace", "porter.cli.main"]


def test_the_api_stands_below_the_command_line():
    """A plugin importing porter.api must not drag in porter's argument parsers: the CLI is built on the API,
    not the other way round."""
    code = "import sys, porter.api; print(sorted(m for m in sys.modules if m.startswith('porter.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_starting_porter_and_recording_tool_versions_import_neither_torch_nor_nncf():
    """Every `porter` command loads the plugins and builds the parser, and every run records tool versions:
    importing torch (or NNCF, which imports torch) there cost seconds on each cached re-run and each --help."""
    code = ("import sys; from porter.plugins import load_plugins; from porter.cli.main import build_parser; "
            "plugins = load_plugins(); build_parser(plugins); plugins.hook.porter_tool_versions(); "
            "print(sorted(m for m in ('torch', 'nncf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
