"""dvc.yaml and params.yaml read together: declared params, code deps and outputs match the code."""

import ast
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT_ROOT
from eslp.params import SECTIONS, STAGE_PARAMS

DVC_YAML = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
PARAMS_YAML = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
STAGES = DVC_YAML["stages"]


def imported_modules(path: Path) -> set[Path]:
    """The ``eslp`` source files that ``path`` imports, directly or through other ``eslp`` modules."""
    found: set[Path] = set()
    pending = [path]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "eslp":
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.split(".")[0] == "eslp"]
            for name in names:
                module = PROJECT_ROOT / (name.replace(".", "/") + ".py")
                package = PROJECT_ROOT / name.replace(".", "/") / "__init__.py"
                for candidate in (module, package):
                    if candidate.is_file() and candidate not in found:
                        found.add(candidate)
                        pending.append(candidate)
        # Every eslp module also runs eslp/__init__.py.
    found.add(PROJECT_ROOT / "eslp" / "__init__.py")
    return found


def output_paths(stage: dict) -> list[str]:
    paths = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_params_it_reads(name):
    assert tuple(STAGES[name]["params"]) == STAGE_PARAMS[name]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_code_it_runs(name):
    script = PROJECT_ROOT / "stages" / f"{name}.py"
    expected = {str(path.relative_to(PROJECT_ROOT)) for path in imported_modules(script)} | {f"stages/{name}.py"}
    declared = {dep for dep in STAGES[name]["deps"] if dep.endswith(".py")}
    assert declared == expected


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_command_runs_its_script(name):
    assert STAGES[name]["cmd"] == f"python stages/{name}.py"


def test_no_output_inside_another():
    paths = [Path(path) for stage in STAGES.values() for path in output_paths(stage)]
    for path in paths:
        for other in paths:
            if path != other:
                assert other not in path.parents, f"{path} is inside {other}"


def test_raw_inputs_are_stage_deps():
    assert "${images_prepare.source}" in STAGES["images_prepare"]["deps"]
    assert "${language_prepare.source}" in STAGES["language_prepare"]["deps"]


def test_metrics_are_not_cached():
    for name, stage in STAGES.items():
        for entry in stage["metrics"]:
            path, options = next(iter(entry.items()))
            assert path == f"metrics/{name}.json"
            assert options == {"cache": False}


def test_params_yaml_sections_match_schema():
    assert set(PARAMS_YAML) == set(SECTIONS) | {"seed", "distribution"}


def test_params_yaml_values_are_plain_scalars():
    for section, values in PARAMS_YAML.items():
        for key, value in (values.items() if isinstance(values, dict) else [(section, values)]):
            assert isinstance(value, (str, int, float, bool)), f"{section}.{key}"
            assert "${" not in str(value), f"{section}.{key}"
