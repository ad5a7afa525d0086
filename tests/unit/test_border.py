"""The core never imports the UI: wizard/, snapshots/ and presets/ stay free of Textual,
questionary and screens/. The core never imports the practice-host lab either (lab/ builds on
the core). And hostwiz/ is only the command line: nothing else imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("textual", "questionary", "screens", "hostwiz", "lab")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["wizard", "snapshots", "presets"])
def test_core_packages_do_not_import_ui(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & set(FORBIDDEN))
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & set(FORBIDDEN)
    }
    assert offenders == {}


def test_importing_the_whole_core_loads_no_ui_module() -> None:
    code = (
        "import sys, importlib, pkgutil, wizard, snapshots, presets\n"
        "for pkg in (wizard, snapshots, presets):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "bad = [m for m in sys.modules\n"
        "       if m.split('.')[0] in ('textual', 'questionary', 'screens', 'lab')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# ---- steps never import each other ---------------------------------------------------------

STEPS_DIR = ROOT / "wizard" / "steps"
SHARED = {"base"}
"""Modules of wizard.steps that are no step: what every step may use."""


def _step_of(path: Path) -> str:
    """The step a module under wizard/steps belongs to: its package, or a flat module's name."""
    part = path.relative_to(STEPS_DIR).parts[0]
    return part.removesuffix(".py")


def _modules_of(node: ast.AST) -> list[str]:
    """The modules an import statement names (``from wizard.steps import x``: wizard.steps.x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        if node.module == "wizard.steps":
            return [f"wizard.steps.{alias.name}" for alias in node.names]
        return [node.module]
    return []


def _steps_imported(path: Path) -> set[str]:
    """The wizard.steps.<name> a module imports (``from wizard.steps import name`` too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = _modules_of(node)
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["wizard", "steps"] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_no_step_imports_another() -> None:
    """Two steps share knowledge of the host through wizard.host, never through each other:
    the docker step's restart, the SSH step's drop-in and ports are all there."""
    offenders = {}
    for path in sorted(STEPS_DIR.rglob("*.py")):
        if path.parent == STEPS_DIR and path.stem in {"__init__", *SHARED}:
            continue  # the registry names every step; base is shared
        own = _step_of(path)
        others = _steps_imported(path) - SHARED - {own}
        if others:
            offenders[str(path.relative_to(ROOT))] = sorted(others)
    assert offenders == {}


def test_the_border_test_sees_a_step_importing_another(tmp_path: Path) -> None:
    module = tmp_path / "plan.py"
    module.write_text(
        "from wizard.steps.ssh.answers import SshAnswers\nfrom wizard.steps import docker\n"
    )
    assert _steps_imported(module) == {"ssh", "docker"}


#: Modules of hostwiz/ that others may still import.
HOSTWIZ_EXCEPTIONS: set[str] = set()


def _imported(path: Path) -> set[str]:
    """What each import in ``path`` names, in full (``from a.b import c`` gives ``a.b.c``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _forbidden_hostwiz(name: str) -> bool:
    if name != "hostwiz" and not name.startswith("hostwiz."):
        return False
    return not any(name == ok or name.startswith(f"{ok}.") for ok in HOSTWIZ_EXCEPTIONS)


def test_nothing_outside_hostwiz_imports_it() -> None:
    """hostwiz/ ties the parts together; the parts (and the benchmarks) never reach back into
    it. Only tests/ may, to test the command line itself."""
    files = [
        path
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in ("hostwiz", "tests")
        and not any(part.startswith(".") or part.endswith(".egg-info") for part in path.parts)
    ]
    assert ROOT / "screens" / "app.py" in files
    offenders = {
        str(path.relative_to(ROOT)): sorted(filter(_forbidden_hostwiz, _imported(path)))
        for path in files
        if any(map(_forbidden_hostwiz, _imported(path)))
    }
    assert offenders == {}


# ---- front ends never name a step -----------------------------------------------------------

FRONT_ENDS = ("hostwiz", "screens")


def _step_names() -> set[str]:
    """Every step's registry name and the name of its package."""
    from wizard.steps import STEPS

    packages = {type(step).__module__.split(".")[2] for step in STEPS.values()}
    return set(STEPS) | packages


def _naming_a_step(path: Path, names: set[str]) -> list[str]:
    """Imports of a step's own modules, and string constants that are exactly a step's name
    (``step.name == "tls"``): the front end would then special-case that step."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = _modules_of(node)
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["wizard", "steps"] and len(parts) > 2 and parts[2] in names:
                found.append(f"imports {module}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_no_front_end_names_a_step() -> None:
    """The CLI, the wizard and plain mode reach steps only through the registry and the
    session (local work, statuses, plans), so a new step needs no front-end change."""
    names = _step_names()
    assert {"ssh", "docker", "tls", "firewall"} <= names
    offenders = {
        str(path.relative_to(ROOT)): found
        for package in FRONT_ENDS
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := _naming_a_step(path, names))
    }
    assert offenders == {}


def test_the_front_end_test_sees_a_step_named(tmp_path: Path) -> None:
    module = tmp_path / "app.py"
    module.write_text(
        "from wizard.steps.tls.plan import PreparedTls\n"
        "def is_tls(step):\n    return step.name == 'tls'\n"
    )
    assert _naming_a_step(module, _step_names()) == [
        "imports wizard.steps.tls.plan",
        "line 3: 'tls'",
    ]


def test_the_session_and_the_site_planner_name_no_step() -> None:
    """Needs travel through typed hooks (:class:`wizard.steps.base.DeclaresNeeds`,
    ``GuardsNeeds``, the site steps' ``DeclaresSiteNeeds``): the session and the site planner
    find them by type, never by a step's name (once, "ssh" without "firewall" meant: plan the
    firewall step off)."""
    names = _step_names()
    site = [p for p in sorted((ROOT / "wizard" / "site").glob("*.py")) if p.name != "registry.py"]
    core = [ROOT / "wizard" / "session.py", *site]  # the site registry lists the site steps
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in core
        if (found := _naming_a_step(path, names))
    }
    assert offenders == {}
