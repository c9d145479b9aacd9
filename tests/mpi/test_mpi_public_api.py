"""The package's public surface is explicit and honest."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["huitong.mpi", "huitong.mpi.normalize", "huitong.mpi.compare", "huitong.mpi.synth"]
)
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
