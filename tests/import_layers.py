"""Static import-layer checker for a package (pure stdlib, reads source with :mod:`ast`).

Each module belongs to a layer; a module may import from its own layer or lower ones, never a
higher one, whether the import is at module level or inside a function. The package root
(``<pkg>/__init__.py``) is exempt: it may import anything, and importing it is never flagged.
Only literal ``import``/``from ... import`` statements are seen (not ``importlib`` calls: the one
the package makes, the registry loading its built-in providers, is covered by its own test);
imports under ``if TYPE_CHECKING:`` are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

Layers = Sequence[Tuple[str, ...]]

LAYERS: List[Tuple[str, ...]] = [  # lowest first
    ("dsid.registry", "dsid.data", "dsid.zoo.members"),
    ("dsid.modules",),
    ("dsid.models",),
    ("dsid.evaluation", "dsid.nlb.specs", "dsid.nlb.scoring", "dsid.zoo.ceilings"),
    ("dsid.training", "dsid.nlb.callback"),
    ("dsid.runs",),
    ("dsid.nlb", "dsid.tuning", "dsid.zoo"),
    ("dsid.autofit",),
    ("dsid.cli",),
]


class Import(NamedTuple):
    name: str  # imported module, dotted
    lineno: int
    module_level: bool  # False when inside a function or class body


def layer_of(name: str, layers: Layers) -> Optional[int]:
    """Index of the layer with the longest prefix matching ``name`` on dotted boundaries, or
    None."""
    best: Tuple[int, Optional[int]] = (-1, None)
    for i, prefixes in enumerate(layers):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best[0]:
                best = (len(p), i)
    return best[1]


def _exists(root: Path, name: str) -> bool:
    """Whether module ``name`` has a file or package directory under ``root`` (the dir above the
    package)."""
    p = root.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or p.is_dir()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_imports(path, module_name: str) -> List[Import]:
    """Every import of a module of ``module_name``'s top-level package in the file ``path``
    (``from a import x, y`` on one line gives one entry).

    ``from a.b import c`` records ``a.b.c`` when ``c`` is a module/package on disk, else ``a.b``.
    Relative imports are resolved against ``module_name`` (an ``__init__.py`` is its package).
    """
    path = Path(path)
    parts = module_name.split(".")
    is_pkg = path.name == "__init__.py"
    root = path.parents[len(parts) - (0 if is_pkg else 1)]  # directory holding the top package
    top = parts[0]
    package = parts if is_pkg else parts[:-1]
    found: List[Import] = []

    def ours(name: str) -> bool:
        return name == top or name.startswith(top + ".")

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, module_level)
            return
        if isinstance(node, ast.Import):
            found.extend(
                Import(a.name, node.lineno, module_level) for a in node.names if ours(a.name)
            )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(package) - 1:
                    return  # beyond the top package
                base = package[: len(package) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            if not ours(base_name):
                return
            for a in node.names:
                sub = f"{base_name}.{a.name}"
                name = sub if a.name != "*" and _exists(root, sub) else base_name
                found.append(Import(name, node.lineno, module_level))
        scope = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for child in ast.iter_child_nodes(node):
            visit(child, module_level and not scope)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return list(dict.fromkeys(found))  # one entry per (module, line, scope)


def package_modules(package_dir, package_name: str) -> Iterator[Tuple[Path, str]]:
    """(file, dotted module name) for every .py file under ``package_dir``."""
    package_dir = Path(package_dir)
    for f in sorted(package_dir.rglob("*.py")):
        rel = f.relative_to(package_dir).with_suffix("").parts
        if rel[-1] == "__init__":
            rel = rel[:-1]
        yield f, ".".join((package_name,) + rel)


def check_layers(package_dir, package_name: str = "dsid", layers: Layers = LAYERS) -> List[str]:
    """Human-readable violations: imports of a higher layer, and modules outside every layer."""
    base = Path(package_dir).parent
    out: List[str] = []
    for f, mod in package_modules(package_dir, package_name):
        if mod == package_name:
            continue
        where = f.relative_to(base).as_posix()
        mine = layer_of(mod, layers)
        if mine is None:
            out.append(f"{where}: {mod} is not assigned to a layer")
            continue
        for imp in module_imports(f, mod):
            theirs = layer_of(imp.name, layers)
            if imp.name != package_name and theirs is not None and theirs > mine:
                scope = "module level" if imp.module_level else "inside a function/class"
                out.append(
                    f"{where}:{imp.lineno}: {mod} (layer {mine}) imports {imp.name} "
                    f"(layer {theirs}) [{scope}]"
                )
    return out


def module_level_cycles(package_dir, package_name: str = "dsid") -> List[List[str]]:
    """Cycles of module-level imports among the package's modules: each strongly connected
    component with more than one member (sorted), or ``[m]`` for a module importing itself.
    Edges are the explicit imports only (not the implicit import of parent packages)."""
    graph: Dict[str, set] = {mod: set() for _, mod in package_modules(package_dir, package_name)}
    for f, mod in package_modules(package_dir, package_name):
        graph[mod] = {i.name for i in module_imports(f, mod) if i.module_level and i.name in graph}

    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: set = set()
    cycles: List[List[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(cycles)
