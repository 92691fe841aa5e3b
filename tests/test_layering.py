"""Dependencies point one way: pages → components → core; core never imports streamlit."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_core_does_not_import_streamlit():
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "core").rglob("*.py"))
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pages_and_components_reach_torch_only_through_core():
    for folder in ("pages", "components"):
        for path in (ROOT / folder).glob("*.py"):
            assert not _imports(path) & {"torch", "transformers", "open_clip", "segment_anything"}, path


def test_components_never_import_pages():
    for path in (ROOT / "components").glob("*.py"):
        assert "pages" not in _imports(path), path
