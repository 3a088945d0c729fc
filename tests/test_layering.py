"""The layering DESIGN.md promises, checked on the import graph (ast, no imports executed): inference and evaluation
never import training code, and scripts never import scripts."""

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_vqgen"
# everything a pipeline or an evaluation needs at run time
INFERENCE = [
    *sorted((PACKAGE / "pipelines").glob("*.py")),
    *sorted((PACKAGE / "schedulers").glob("*.py")),
    *sorted((PACKAGE / "models").glob("*.py")),
    *sorted((PACKAGE / "evaluation").glob("*.py")),
    PACKAGE / "data" / "pixels.py",
    PACKAGE / "data" / "image_modes.py",
    PACKAGE / "sampling.py",
    PACKAGE / "vocabulary.py",
    PACKAGE / "image_utils.py",
]
SCRIPTS = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
SCRIPTS += sorted((ROOT / "tools").glob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved), at any depth of the file."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_checker_sees_relative_imports():
    names = imported_modules(PACKAGE / "pipelines" / "reverse_process.py")
    assert "hf_vqgen.image_utils" in names


@pytest.mark.parametrize("path", INFERENCE, ids=lambda p: str(p.relative_to(ROOT)))
def test_inference_never_imports_training(path):
    training = sorted(name for name in imported_modules(path) if name.startswith("hf_vqgen.training"))
    assert not training, f"{path.relative_to(ROOT)} imports {training}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_neither_touch_sys_path_nor_import_scripts(path):
    tree = ast.parse(path.read_text())
    touches = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert not touches, f"{path.relative_to(ROOT)} uses sys.path (lines {touches})"
    # a module without a `__main__` block (benchmarks/common.py, accelerator_workloads.py, ...) is shared on purpose
    script_names = {script.stem for script in SCRIPTS if 'if __name__ == "__main__":' in script.read_text()}
    imported_scripts = sorted(imported_modules(path) & script_names)
    assert not imported_scripts, f"{path.relative_to(ROOT)} imports the scripts {imported_scripts}"


@pytest.mark.parametrize("module", ["hf_vqgen.pipelines", "hf_vqgen.models", "hf_vqgen.schedulers"])
def test_inference_imports_no_data_loading_stack_even_transitively(module):
    """Checked in a fresh interpreter on the real import graph: loading and sampling a pipeline needs neither
    `datasets` nor the emoji builder nor any training code."""
    import subprocess
    import sys

    probe = f"import sys, {module}; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    modules = ast.literal_eval(loaded.strip())
    # (`tarfile` is not checked: torch imports it itself; the emoji builder that also needs it is)
    light = {"hf_vqgen.data", "hf_vqgen.data.pixels", "hf_vqgen.data.image_modes"}  # the image rule inference uses
    heavy = [
        name
        for name in modules
        if name == "datasets" or (name.startswith(("hf_vqgen.data", "hf_vqgen.training")) and name not in light)
    ]
    assert not heavy, f"import {module} loads {heavy}"
