"""The public surface: __all__ is explicit, complete and importable."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import zkelect
import zkelect.aio


@pytest.mark.parametrize("package", [zkelect, zkelect.aio], ids=["zkelect", "zkelect.aio"])
def test_all_names_exist(package: object) -> None:
    for name in package.__all__:  # type: ignore[attr-defined]
        assert hasattr(package, name), name


def test_aio_lists_every_public_name() -> None:
    public = {
        name
        for name in vars(zkelect.aio)
        if not name.startswith("_") and not inspect.ismodule(getattr(zkelect.aio, name))
    }
    assert public == set(zkelect.aio.__all__)


def test_all_lists_every_public_name() -> None:
    # dir(), not vars(): the kazoo-backed names load on first use (zkelect.__getattr__).
    public = {
        name
        for name in dir(zkelect)
        if not name.startswith("_") and not inspect.ismodule(getattr(zkelect, name))
    }
    assert public == set(zkelect.__all__) - {"__version__"}


def test_errors_have_one_root() -> None:
    for name in zkelect.__all__:
        value = getattr(zkelect, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, zkelect.ZkElectError), name


def test_package_is_typed() -> None:
    assert (Path(zkelect.__file__).parent / "py.typed").exists()
    assert zkelect.__version__.count(".") == 2
