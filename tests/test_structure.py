"""The package's shape, read from its source with ``ast`` (nothing is imported or run).

- Imports point down a fixed order of layers (cli -> application, demo -> compression, tuning,
  ensemble, run_export -> training / inspection / export / benchmark -> adversarial -> runtime,
  evaluation, comparison -> models, data, plotting -> recorded -> registry, settings, files,
  quiet, weights -> errors), and no module
  imports itself back through others (no cycle).
- An import inside a function only defers a heavy optional dependency (or, in one place,
  TensorFlow's noisy start-up); each such import is on ``DEFERRED`` with the reason.
- No function is longer than ``MAX_FUNCTION_LINES``.

Run it as a script to print the import graph between the package's parts and its largest
files and functions (``python tests/test_structure.py [PACKAGE_DIR]``).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kerascnn"

# Each part of the package (a subpackage or a top-level module) and its layer: a part may
# import only parts of lower layers. ``kerascnn`` is the package's __init__ (the public API).
LAYERS = (
    ("errors",),
    ("registry", "settings", "files", "quiet", "weights"),
    ("recorded",),
    ("models", "data", "plotting"),
    ("runtime", "evaluation", "comparison"),
    ("adversarial",),
    ("training", "export", "inspection", "benchmark"),
    ("compression", "tuning", "ensemble", "run_export"),
    ("application", "demo"),
    ("kerascnn",),  # the package API: create_model, load
    ("cli",),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}

# (importing module, imported module) -> why the import waits until the function runs.
DEFERRED = {
    ("kerascnn.quiet", "keras"): "imported while TensorFlow's start-up lines are captured",
    ("kerascnn.quiet", "tensorflow"): "imported while TensorFlow's start-up lines are captured",
    ("kerascnn.training.distribute", "jax"): "the optional [jax] extra",
    ("kerascnn.runtime.onnx", "onnxruntime"): "the optional [onnx] extra",
    ("kerascnn.export.onnx", "tf2onnx"): "the optional [onnx] extra",
    ("kerascnn.data.sources.tfds", "tensorflow_datasets"): "the optional [tfds] extra",
    ("kerascnn.demo", "kerascnn.demo.page"): "imports gradio, the optional [demo] extra",
    ("kerascnn.weights.readers", "safetensors"): "the optional [torchvision] extra",
    ("kerascnn.weights.readers", "safetensors.numpy"): "the optional [torchvision] extra",
}
MAX_FUNCTION_LINES = 60


@dataclass
class Module:
    name: str
    path: Path
    imports: set[str] = field(default_factory=set)  # package modules imported at load time
    local_imports: list[tuple[str, int]] = field(default_factory=list)  # (module, line)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(root: Path = PACKAGE) -> dict[str, Module]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = {}
    for name, path in files.items():
        module = Module(name, path)
        tree = ast.parse(path.read_text(), str(path))
        for node, in_function in _imports(tree):
            for target in _targets(node, name, path, files):
                if in_function:
                    module.local_imports.append((target, node.lineno))
                elif target.split(".")[0] == root.name:
                    module.imports.add(target)
        modules[name] = module
    return modules


def _imports(tree: ast.AST, in_function: bool = False):
    for node in ast.iter_child_nodes(tree):
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        yield from _imports(node, inner)


def _targets(node, importer: str, path: Path, files: dict[str, Path]) -> list[str]:
    """The modules an import statement loads: ``from a.b import c`` is ``a.b.c`` when that
    is a module of the package, else ``a.b``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolve against the importing package
        package = importer.split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    found = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
    return found or [base]


def part(module: str) -> str:
    """``kerascnn.models.resnet`` -> ``models``; ``kerascnn`` -> ``kerascnn``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def part_graph(modules: dict[str, Module], local: bool = False) -> dict[str, set[str]]:
    """Which parts import which; with ``local``, counting imports inside functions too."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module in modules.values():
        targets = set(module.imports)
        if local:
            targets |= {t for t, _ in module.local_imports if t in modules}
        for target in targets:
            if part(target) != part(module.name):
                graph[part(module.name)].add(part(target))
    return graph


def cycles(modules: dict[str, Module], local: bool = False) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted; with
    ``local``, counting imports inside functions too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        targets = set(modules[name].imports)
        if local:
            targets |= {t for t, _ in modules[name].local_imports}
        for target in sorted(targets):
            if target not in modules:
                continue
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for name in sorted(modules):
        if name not in index:
            visit(name)
    return found


def upward_imports(modules: dict[str, Module]) -> list[str]:
    wrong = []
    for module in modules.values():
        for target in sorted(module.imports):
            source, sink = part(module.name), part(target)
            if source != sink and RANK.get(sink, 99) >= RANK.get(source, -1):
                wrong.append(f"{module.name} -> {target}")
    return wrong


def functions(root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(lines, "path:name") of every function, the docstring not counted."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    lines -= first.end_lineno - first.lineno + 1
                where = f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"
                found.append((lines, where))
    return sorted(found, reverse=True)


# -- the tests ----------------------------------------------------------------------------


def test_every_part_has_a_layer():
    parts = {part(name) for name in read_modules()}
    assert parts <= set(RANK), f"parts without a layer: {sorted(parts - set(RANK))}"


def test_no_import_cycle():
    assert cycles(read_modules()) == []


def test_imports_point_down_the_layers():
    assert upward_imports(read_modules()) == []


def test_function_local_imports_only_defer_optional_dependencies():
    local = [
        f"{module.name}:{line} imports {target}"
        for module in read_modules().values()
        for target, line in module.local_imports
        if (module.name, target.split(".")[0]) not in DEFERRED
        and (module.name, target) not in DEFERRED
    ]
    assert local == []


def test_no_function_is_longer_than_the_limit():
    too_long = [f"{where} ({n} lines)" for n, where in functions() if n > MAX_FUNCTION_LINES]
    assert too_long == []


def test_the_checks_find_what_they_look_for(tmp_path):
    """The walker itself: a cycle, an upward arrow and a function-local import, written here."""
    root = tmp_path / "kerascnn"
    (root / "models").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "models" / "__init__.py").write_text("from kerascnn.models import a\n")
    (root / "models" / "a.py").write_text("from kerascnn.models import b\nimport kerascnn.cli\n")
    (root / "models" / "b.py").write_text("from kerascnn.models import a\n")
    (root / "cli.py").write_text("def main():\n    import kerascnn.models\n")
    modules = read_modules(root)
    assert cycles(modules) == [["kerascnn.models.a", "kerascnn.models.b"]]
    assert upward_imports(modules) == ["kerascnn.models.a -> kerascnn.cli"]
    assert modules["kerascnn.cli"].local_imports == [("kerascnn.models", 2)]


# -- the report ---------------------------------------------------------------------------


def report(root: Path = PACKAGE, top: int = 12) -> str:
    modules = read_modules(root)
    lines = ["import graph between the package's parts (A -> B: A imports B; (B): only inside"]
    lines.append("a function, where an import hides a cycle or an upward arrow):")
    loaded = part_graph(modules)
    for source, targets in sorted(part_graph(modules, local=True).items()):
        names = [t if t in loaded[source] else f"({t})" for t in sorted(targets)]
        lines.append(f"  {source:<12} -> {', '.join(names)}")
    found = cycles(modules, local=True)
    lines.append(f"module cycles, counting imports inside functions: {len(found)}")
    lines += [f"  {' <-> '.join(group)}" for group in found]
    local = sum(len(m.local_imports) for m in modules.values())
    lines.append(f"function-local imports: {local}")
    sizes = sorted(((len(p.read_text().splitlines()), p) for p in root.rglob("*.py")), reverse=True)
    lines.append("largest files (lines):")
    lines += [f"  {n:>5}  {p.relative_to(root.parent)}" for n, p in sizes[:top]]
    lines.append("longest functions (lines, docstring excluded):")
    lines += [f"  {n:>5}  {where}" for n, where in functions(root)[:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE))
