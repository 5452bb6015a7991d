"""The pip path (requirements.txt) and the conda path (environment.yml) pin the same environment."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "torch",
    "jupyterlab",
    "ipywidgets",
    "jupyterlab_widgets",
    "matplotlib",
    "nbval",
    "papermill",
    "scikit-learn",
    "mnist1d",
    "tqdm",
    "pytest",
    "hypothesis",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"not an exact pin: {line!r}"
        pins[norm(m.group(1))] = m.group(2)
    return pins


def requirements_pins():
    return parse_pins((ROOT / "requirements.txt").read_text().splitlines())


def environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    conda = [d for d in deps if isinstance(d, str)]
    return conda, parse_pins(pip_section), pip_section


def test_requirements_pin_every_course_package_exactly():
    pins = requirements_pins()
    missing = {norm(r) for r in REQUIRED} - set(pins)
    assert not missing, f"requirements.txt does not pin {sorted(missing)}"
    assert pins["torch"] == "2.13.0"
    assert "torchvision" not in pins


def test_environment_yml_and_requirements_agree():
    conda, env_pins, pip_section = environment_pins()
    assert "python=3.11" in conda
    assert env_pins == requirements_pins()
    assert "-e ." in pip_section


def test_package_metadata_uses_lower_bounds_only():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(meta["dependencies"]) + [d for group in meta.get("optional-dependencies", {}).values() for d in group]
    for dep in deps:
        assert "==" not in dep and "<" not in dep and ">=" in dep, f"{dep!r} must be a lower bound"


def test_installed_versions_match_the_pins():
    from importlib.metadata import PackageNotFoundError, version

    mismatched = {}
    for name, pinned in requirements_pins().items():
        try:
            got = version(name)
        except PackageNotFoundError:
            mismatched[name] = (pinned, "not installed")
            continue
        if got.split("+")[0] != pinned:
            mismatched[name] = (pinned, got)
    assert not mismatched, f"installed versions differ from the pins (run make setup): {mismatched}"


def test_binder_builds_the_pinned_environment():
    """repo2docker (Binder) reads binder/ or .binder/ first, then environment.yml at the top; it must get ours."""
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), (
        "a binder/ folder would shadow environment.yml"
    )
    _conda, pins, pip_section = environment_pins()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section  # the CPU build of torch
    assert pins["torch"] == "2.13.0" and "-e ." in pip_section


def test_colab_install_cell_uses_the_pins():
    text = (ROOT / "docs" / "run_without_installing.md").read_text()
    cell = text.split("```python", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in cell.strip().splitlines()]
    assert any(c.startswith("!pip install") and "-r requirements.txt" in c and "whl/cpu" in c for c in commands)
    assert any(c.startswith("!pip install") and "--no-deps -e ." in c for c in commands)
    assert (ROOT / "requirements.txt").is_file() and (ROOT / "pyproject.toml").is_file()
