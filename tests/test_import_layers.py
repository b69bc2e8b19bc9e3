"""The package's import layering (no upward imports, no module-level cycles) and the checker
itself."""

import re
import textwrap
from pathlib import Path

from tests.import_layers import check_layers, module_imports, module_level_cycles, package_modules

DSID = Path(__file__).resolve().parents[1] / "dsid"

FAKE_LAYERS = [("fakepkg.low",), ("fakepkg.mid",), ("fakepkg.top",)]


def test_dsid_has_no_upward_imports():
    violations = check_layers(DSID)
    assert violations == [], f"{len(violations)} layer violations:\n" + "\n".join(violations)


def test_dsid_has_no_module_level_cycles():
    cycles = module_level_cycles(DSID)
    assert cycles == [], "module-level import cycles:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


# imports of DSID modules inside functions: only where the imported module needs an optional
# dependency that may be missing (Ray Tune for `dsid tune`)
# Ray is needed only to run PBT; `import dsid` stays light (no torch) while offering dsid.fit
LAZY_ALLOWED = {
    ("dsid", "dsid.autofit.arrays"),
    ("dsid", "dsid.runs.config"),
    ("dsid", "dsid.runs.train"),
    ("dsid", "dsid.runs.load"),
    # `dsid --version` answers without the command modules (PyTorch, Lightning)
    ("dsid.cli", "dsid.autofit.commands"),
    ("dsid.cli", "dsid.data.commands"),
    ("dsid.cli", "dsid.nlb.commands"),
    ("dsid.cli", "dsid.runs.commands"),
    ("dsid.cli", "dsid.tuning.commands"),
    ("dsid.cli", "dsid.zoo.commands"),
}


def is_command_module(name: str) -> bool:
    """A package's ``commands`` module: its handlers import what they run when they run, so
    `dsid --help` and a command's parsing import neither PyTorch nor Lightning."""
    return name.endswith(".commands")


def test_dsid_imports_its_modules_at_module_level():
    lazy = {
        (name, imp.name): f"{path}:{imp.lineno}"
        for path, name in package_modules(DSID, "dsid")
        for imp in module_imports(path, name)
        if not imp.module_level
    }
    hidden = sorted(
        f"{where}: {a} imports {b} inside a function"
        for (a, b), where in lazy.items()
        if (a, b) not in LAZY_ALLOWED and not is_command_module(a)
    )
    assert hidden == [], "\n".join(hidden)
    assert set(lazy) >= LAZY_ALLOWED  # the allowance is still needed


def test_registry_providers_reach_every_component_by_literal_imports():
    """The registry (lowest layer) imports ``BUILTIN_PROVIDERS`` by name on its first look-up, the
    one import the layer checks cannot see; from those packages every module that registers a
    component or model must be reached by literal imports, which they do see."""
    from dsid.registry import BUILTIN_PROVIDERS

    files = {name: path for path, name in package_modules(DSID, "dsid")}
    registering = {
        name
        for name, path in files.items()
        if re.search(r"^@[A-Z_]+\.register\(", path.read_text(), re.M)
    }
    reached, todo = set(), list(BUILTIN_PROVIDERS)
    while todo:
        name = todo.pop()
        if name in reached or name not in files:
            continue
        reached.add(name)
        todo.extend(i.name for i in module_imports(files[name], name) if i.module_level)
    assert registering, "no registering module found: the pattern no longer matches the decorators"
    missing = sorted(registering - reached)
    assert missing == [], f"registered only when imported by something else: {missing}"


def make_pkg(tmp_path, files):
    """Write ``fakepkg`` with ``files`` ({relative path: source}) under tmp_path; return its dir."""
    pkg = tmp_path / "fakepkg"
    for rel, src in {"__init__.py": "", **files}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(textwrap.dedent(src))
    return pkg


def check(pkg):
    return check_layers(pkg, "fakepkg", FAKE_LAYERS)


def test_upward_import_at_module_level_is_reported(tmp_path):
    pkg = make_pkg(
        tmp_path, {"low.py": "import os\nfrom fakepkg.top import thing\n", "top.py": "thing = 1\n"}
    )
    (v,) = check(pkg)
    assert "fakepkg/low.py:2" in v and "fakepkg.top (layer 2)" in v and "fakepkg.low (layer 0)" in v
    assert "module level" in v


def test_upward_import_inside_function_is_reported(tmp_path):
    pkg = make_pkg(tmp_path, {"mid.py": "def f():\n    import fakepkg.top\n", "top.py": ""})
    (v,) = check(pkg)
    assert "fakepkg/mid.py:2" in v and "inside a function" in v


def test_downward_and_same_layer_imports_are_allowed(tmp_path):
    pkg = make_pkg(
        tmp_path,
        {
            "low.py": "",
            "mid/__init__.py": "from . import a\n",
            "mid/a.py": "from fakepkg.low import x\nfrom .. import low\n",
            "top.py": "",
        },
    )
    assert check(pkg) == []


def test_relative_upward_import_is_reported(tmp_path):
    pkg = make_pkg(
        tmp_path,
        {
            "mid/__init__.py": "",
            "mid/sub/__init__.py": "",
            "mid/sub/m.py": "x = 0\nfrom ...top import y\n",
            "top/__init__.py": "y = 1\n",
        },
    )
    assert [i.name for i in module_imports(pkg / "mid/sub/m.py", "fakepkg.mid.sub.m")] == [
        "fakepkg.top"
    ]
    (v,) = check(pkg)
    assert "fakepkg/mid/sub/m.py:2" in v and "imports fakepkg.top (layer 2)" in v


def test_from_import_of_submodule_records_the_submodule(tmp_path):
    pkg = make_pkg(
        tmp_path,
        {
            "low.py": "from fakepkg import top\nfrom fakepkg.top import y, sub\n",
            "top/__init__.py": "y = 1\n",
            "top/sub.py": "",
        },
    )
    names = [i.name for i in module_imports(pkg / "low.py", "fakepkg.low")]
    assert names == ["fakepkg.top", "fakepkg.top", "fakepkg.top.sub"]


def test_type_checking_imports_are_ignored(tmp_path):
    pkg = make_pkg(
        tmp_path,
        {
            "low.py": """\
        import typing
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from fakepkg.top import T
        if typing.TYPE_CHECKING:
            import fakepkg.top
        """,
            "top.py": "",
        },
    )
    assert check(pkg) == []


def test_module_outside_every_layer_is_reported(tmp_path):
    pkg = make_pkg(
        tmp_path, {"low.py": "", "lowly.py": ""}
    )  # "fakepkg.low" must not match "fakepkg.lowly"
    assert check(pkg) == ["fakepkg/lowly.py: fakepkg.lowly is not assigned to a layer"]


def test_two_module_cycle_is_found(tmp_path):
    pkg = make_pkg(
        tmp_path,
        {
            "a.py": "import fakepkg.b\n",
            "b.py": "from fakepkg import a\n",
            "c.py": "from . import a\n",
            "d.py": "def f():\n    import fakepkg.c\n",
            "e.py": "import fakepkg.d\n",
        },
    )
    assert module_level_cycles(pkg, "fakepkg") == [["fakepkg.a", "fakepkg.b"]]


def test_acyclic_package_has_no_cycles(tmp_path):
    pkg = make_pkg(
        tmp_path, {"a.py": "import fakepkg.b\n", "b.py": "from . import c\n", "c.py": "import os\n"}
    )
    assert module_level_cycles(pkg, "fakepkg") == []
