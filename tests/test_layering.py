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


def _modules(path: Path) -> set[str]:
    """Every module `path` imports, in full (`from components import x` gives `components` and `components.x`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules(path)}


def test_pages_and_components_reach_torch_only_through_core():
    for folder in ("pages", "components"):
        for path in (ROOT / folder).glob("*.py"):
            assert not _imports(path) & {"torch", "transformers", "open_clip", "segment_anything"}, path


def test_only_core_store_opens_lance():
    """One door per external system: the app reaches Lance through core.store (benchmarks may compare against it)."""
    for folder in ("core", "components", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            if path != ROOT / "core" / "store.py":
                assert not _imports(path) & {"lancedb", "lance"}, path


def test_components_never_import_pages():
    for path in (ROOT / "components").glob("*.py"):
        assert "pages" not in _imports(path), path


VIEW_IMPORTS_PENDING: dict[str, set[str]] = {}


def test_a_view_never_imports_another_view():
    """Views draw: what two views share (stored-dataset reads, downloads, state, figures) lives in its own module."""
    for path in (ROOT / "components").glob("*_view.py"):
        views = {m.split(".")[1] for m in _modules(path) if m.startswith("components.") and m.endswith("_view")}
        assert views <= VIEW_IMPORTS_PENDING.get(path.stem, set()), path


def test_figure_builders_need_no_widgets():
    """bench/ builds figures from these modules: they import neither Streamlit nor a view."""
    for name in ("charts", "matching_charts"):  # the scatter figure, too (bench_scatter, pairs_embed)
        modules = _modules(ROOT / "components" / f"{name}.py")
        assert not {m for m in modules if m == "streamlit" or m.endswith("_view")}, name


# views and pages that still reach st.session_state themselves (none now)
STATE_PENDING: set[str] = set()


def test_session_state_is_reached_only_through_components_state():
    """Each key is spelled once, in a typed accessor of components/state.py."""
    for folder in ("pages", "components"):
        for path in (ROOT / folder).glob("*.py"):
            if path.stem in STATE_PENDING | {"state"}:
                continue
            uses = [n for n in ast.walk(ast.parse(path.read_text())) if getattr(n, "attr", None) == "session_state"]
            assert not uses, f"{path}:{uses[0].lineno}" if uses else path
