"""``install_as_pykafka()``: make ``import pykafka`` load pykafka_c.

A meta-path finder maps ``pykafka`` and every ``pykafka.<sub>`` to the
matching ``pykafka_c`` module (the same module object, so ``isinstance``
checks and exception classes agree between both names).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["install_as_pykafka"]

_ALIAS = "pykafka"
_TARGET = "pykafka_c"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self._target = target
        self._real_spec: ModuleSpec | None = None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(self._target)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module is already executed under its real name.  The import
        # system has just pointed its __spec__ at the alias; put the real
        # one back so that reload() and tools reading __spec__ see
        # pykafka_c's module.
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str,
                  path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real = _TARGET + fullname[len(_ALIAS):]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


_finder = _AliasFinder()


def install_as_pykafka(force: bool = False) -> ModuleType:
    """Register pykafka_c under the name ``pykafka``.

    After this, ``import pykafka``, ``from pykafka import KafkaClient`` and
    ``from pykafka.exceptions import SocketDisconnectedError`` give
    pykafka_c's objects.  If a real ``pykafka`` was already imported, a
    RuntimeError is raised unless ``force`` is true (then the aliases
    replace it in ``sys.modules``).
    """
    existing = sys.modules.get(_ALIAS)
    if existing is not None and getattr(existing, "__name__", "") != _TARGET:
        if not force:
            raise RuntimeError("a module named 'pykafka' is already "
                               "imported; call install_as_pykafka(force=True)"
                               " to replace it")
        for name in list(sys.modules):
            if name == _ALIAS or name.startswith(_ALIAS + "."):
                del sys.modules[name]
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    # Alias what is already imported so both names share module objects.
    for name, mod in list(sys.modules.items()):
        if name == _TARGET or name.startswith(_TARGET + "."):
            sys.modules.setdefault(_ALIAS + name[len(_TARGET):], mod)
    return sys.modules.setdefault(_ALIAS, importlib.import_module(_TARGET))
