"""constraints.txt, the lock `make` installs with, against pyproject.toml: every line pins one
version, every requirement of the project and of its test extra is pinned inside its range,
and nothing they pull in is left unpinned."""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.servers import ROOT


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    return [r for r in wanted if r.marker is None or r.marker.evaluate()]


def lock() -> dict[NormalizedName, Version]:
    pins: dict[NormalizedName, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pinned = Requirement(line)
        (spec,) = pinned.specifier
        assert spec.operator == "==" and not pinned.extras and pinned.marker is None, line
        name = canonicalize_name(pinned.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(spec.version)
    return pins


def test_every_line_of_the_lock_pins_one_version() -> None:
    assert lock()


@pytest.mark.parametrize("requirement", pyproject_requirements(), ids=str)
def test_the_lock_pins_each_requirement_inside_its_range(requirement: Requirement) -> None:
    pins = lock()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement} is not in constraints.txt: run `make lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), \
        f"constraints.txt pins {name}=={pins[name]}, outside {requirement}: run `make lock`"


def test_what_the_requirements_pull_in_is_pinned_too() -> None:
    """Walked through the installed packages' own metadata (`make` installed them), so a
    dependency a new release brings in is caught, not installed unpinned."""
    pins = lock()
    seen: set[NormalizedName] = set()
    todo = pyproject_requirements()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}) or any(
                    needed.marker.evaluate({"extra": extra}) for extra in requirement.extras):
                todo.append(needed)
    assert sorted(seen - pins.keys()) == []
