"""Names of a package imported on first use (PEP 562), so that importing one light module of a package (the
pipelines' `hf_vqgen.data.pixels`) does not import everything its siblings need (`datasets`, the emoji builder)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names live in the submodules `exports` maps them to
    (`{"PixelTransform": ".pixels"}`). Each name is imported once, then cached in the package."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
