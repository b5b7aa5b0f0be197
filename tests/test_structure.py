"""The shape of the code: arrows point down only, and the dashboard uses Streamlit's public API."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pixelcnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every pixelcnn module ``path`` imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycle_inside_the_package():
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    # a package's __init__ re-exports its rooms; its rooms importing siblings is not a cycle through it
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_engine_imports_no_streamlit():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_the_dashboard_uses_streamlit_public_api_only():
    files = [ROOT / "streamlit_app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("pixelcnn/**/*.py")]
    for path in files:
        text = path.read_text()
        assert "streamlit.runtime" not in text and "streamlit.web" not in text, path


def test_model_kinds_live_in_one_room_each():
    """Sampling and receptive fields call the kind contract: they never test a kind's name or reach
    into a kind's layers."""
    for name in ("sampling.py", "explain/receptive.py", "training/trainer.py", "store/checkpoint.py"):
        text = (PACKAGE / name).read_text()
        for word in ('"gated"', '"rgb"', '"pixelcnn"', "output_logits", "input_conv", ".blocks", ".layers"):
            assert word not in text, (name, word)
