"""Every private part of a library the worker uses (f8a_jobs_worker/compat.py) still exists, in a release of
the series it was checked against: an upgrade fails here first, not in production."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

from f8a_jobs_worker.compat import CHECKED, PRIVATE, PrivateUse


@pytest.mark.parametrize("package", sorted(CHECKED))
def test_installed_release_is_in_the_checked_series(package: str) -> None:
    installed = version(package)
    assert installed.startswith(CHECKED[package] + "."), (
        f"{package} {installed} is outside the checked {CHECKED[package]}.x: re-check its private uses "
        "(f8a_jobs_worker/compat.py, docs/architecture.md), then widen the series and pyproject.toml"
    )


@pytest.mark.parametrize("use", PRIVATE, ids=lambda use: use.target)
def test_private_attribute_still_exists(use: PrivateUse) -> None:
    module_name, _, path = use.target.partition(":")
    owner_name, _, attribute = path.rpartition(".")
    owner = importlib.import_module(module_name)
    for part in filter(None, owner_name.split(".")):  # "" for a function of the module itself
        owner = getattr(owner, part)
    if hasattr(owner, attribute):
        return
    # an attribute set on instances: it must still be assigned by the class or one of its bases
    sources = [inspect.getsource(cls) for cls in inspect.getmro(owner) if cls is not object]
    assert any(f"self.{attribute} =" in source for source in sources), use


def test_every_private_use_names_a_checked_package() -> None:
    assert {use.package for use in PRIVATE} == set(CHECKED)


#: the most private uses the register may hold (each one a release of a library that can break the worker)
MOST = 10


def test_the_register_stays_short() -> None:
    assert len(PRIVATE) <= MOST, [use.target for use in PRIVATE]
