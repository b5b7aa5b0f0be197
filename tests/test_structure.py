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


# The wings from the top floor down; a module may import its own wing and any lower floor, never a higher one.
FLOORS = [
    {"__main__", "api", "bench", "recipes", "contention", "train", "checkpoint"},  # entry points, old names
    {"cli"},
    {"serve"},
    {"explain", "notebooks"},
    {"training"},
    {"sampling", "figures"},
    {"store"},
    {"models"},
    {"errors", "options", "runtime", "paths", ""},
]


def wing_of(module: str) -> str:
    """``pixelcnn.serve.jobs`` -> ``serve``; ``pixelcnn.sampling`` -> ``sampling``; ``pixelcnn`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor_of(module: str) -> int:
    wing = wing_of(module)
    for floor, wings in enumerate(FLOORS):
        if wing in wings:
            return floor
    raise AssertionError(f"{module}: its wing {wing!r} has no floor in FLOORS; give it one")


def test_the_wings_import_downward_only():
    """cli and serve above explain and training, store and models at the bottom: no wing imports a higher one,
    and the package has no top-level module that no floor names."""
    upward = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for target in imports_of(path):
            if wing_of(target) != wing_of(name) and floor_of(target) < floor_of(name) and \
                    not (wing_of(name) == "" and path.name == "__init__.py"):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that point up: " + ", ".join(sorted(upward))


def test_no_module_or_function_outgrows_a_reading():
    """No module over 460 lines and no function over 80 (the ~400 and ~60 a newcomer reads in one sitting,
    with room for a docstring), except those named here with the reason they are longer."""
    long_modules = {"bench.py": "one benchmark per section, each run in a child process"}
    long_functions = {"bench.py": "the benchmarks' argument parser lists every benchmark's options"}
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        text = path.read_text()
        if len(text.splitlines()) > 460 and rel not in long_modules:
            too_long.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > 80 and rel not in long_functions:
                too_long.append(f"{rel}: {node.name} has {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


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
