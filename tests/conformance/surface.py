"""Describe a pykafka-shaped package's public surface as plain data.

``describe(package)`` imports ``package`` (``"pykafka"`` or
``"pykafka_c"``) and the modules of :data:`MODULES` under it, and returns
a JSON-serialisable dict:

* ``names``: ``{"module.Name": entry}`` for every public class and
  function a module defines or lists in ``__all__``; an entry has the
  ``kind`` (class, function, other), the ``signature`` of the callable
  (``[[name, kind, default], ...]``, the default as :func:`_value`
  renders it, ``"<required>"`` when there is none) and, for classes, the
  signatures of its public methods and the names of its public
  properties;
* ``exceptions``: ``{name: {"bases": [...], "error_code": code}}`` of
  pykafka's exception classes;
* ``error_codes``: ``{code: class name}`` (``ERROR_CODES``);
* ``constants``: the values of ``common``'s ``OffsetType`` and
  ``CompressionType``, ``EPOCH``, the package's ``__all__`` and
  ``protocol``'s ``API_VERSIONS_080`` / ``API_VERSIONS_090``.

tests/test_api_compat.py runs it on the real pykafka 2.8.0 (from the
pinned sdist, in a subprocess: ``python surface.py SRC_DIR``) and on
pykafka_c, and compares.
"""

import importlib
import inspect
import json
import sys

#: pykafka 2.8's modules, as pykafka_c mirrors them (the rdkafka package
#: needs pykafka's librdkafka binding and cli.kafka_tools needs tabulate:
#: their signatures are pinned in tests/test_api_compat.py instead).
MODULES = [
    "", "client", "cluster", "broker", "topic", "partition",
    "simpleconsumer", "balancedconsumer", "managedbalancedconsumer",
    "membershipprotocol", "producer", "partitioners", "common",
    "exceptions", "connection", "handlers", "utils", "utils.compat",
    "utils.compression", "utils.error_handlers", "utils.socket",
    "utils.struct_helpers", "protocol", "test.utils",
]

REQUIRED = "<required>"


def _value(obj):
    """A comparable rendering of a default or constant value."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, bytes):
        return "bytes:" + obj.hex()
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__] + [_value(x) for x in obj]
    if isinstance(obj, type) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "<%s %s>" % ("class" if isinstance(obj, type) else "function",
                            obj.__name__)
    return "<%s instance>" % type(obj).__name__


def _signature(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = []
    for p in sig.parameters.values():
        default = REQUIRED if p.default is inspect.Parameter.empty else _value(p.default)
        out.append([p.name, p.kind.name, default])
    return out


def _describe_class(cls):
    methods, properties = {}, []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue                  # (__init__: the class's signature)
        owner = next((k for k in cls.__mro__ if name in vars(k)), object)
        if owner is object or owner.__module__ == "builtins":
            continue
        attr = vars(owner)[name]
        if isinstance(attr, property) or inspect.isgetsetdescriptor(attr) or \
                inspect.ismemberdescriptor(attr):
            properties.append(name)
        elif isinstance(attr, (staticmethod, classmethod)) or \
                type(attr).__name__ == "classmethod_descriptor":
            methods[name] = _signature(getattr(cls, name))
        elif inspect.isfunction(attr) or inspect.ismethoddescriptor(attr):
            methods[name] = _signature(attr)
    return {"kind": "class", "signature": _signature(cls), "methods": methods,
            "properties": properties,
            "is_exception": issubclass(cls, BaseException)}


def _public_names(mod, package):
    names = set(getattr(mod, "__all__", ()))
    for name, obj in vars(mod).items():
        if name.startswith("_"):
            continue
        home = getattr(obj, "__module__", None) or ""
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                home.split(".")[0] == package and home == mod.__name__:
            names.add(name)
    return sorted(names)


def describe(package):
    out = {"names": {}, "exceptions": {}, "error_codes": {}, "constants": {},
           "missing_modules": []}
    for sub in MODULES:
        modname = package + ("." + sub if sub else "")
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            out["missing_modules"].append("%s: %s" % (sub, exc))
            continue
        for name in _public_names(mod, package):
            obj = getattr(mod, name, None)
            key = "%s.%s" % (sub, name) if sub else name
            if inspect.isclass(obj):
                out["names"][key] = _describe_class(obj)
            elif callable(obj):
                out["names"][key] = {"kind": "function", "signature": _signature(obj)}
            else:
                out["names"][key] = {"kind": "other", "value": _value(obj)}
    exc = importlib.import_module(package + ".exceptions")
    for name, obj in sorted(vars(exc).items()):
        if inspect.isclass(obj) and issubclass(obj, BaseException) and \
                obj.__module__ == exc.__name__:
            out["exceptions"][name] = {
                "bases": [b.__name__ for b in obj.__bases__],
                "error_code": getattr(obj, "ERROR_CODE", None)}
    out["error_codes"] = {str(code): cls.__name__
                          for code, cls in sorted(exc.ERROR_CODES.items())}
    common = importlib.import_module(package + ".common")
    for holder in ("OffsetType", "CompressionType"):
        cls = getattr(common, holder)
        out["constants"][holder] = {k: v for k, v in vars(cls).items()
                                    if not k.startswith("_")}
    out["constants"]["EPOCH"] = repr(common.EPOCH)
    top = importlib.import_module(package)
    out["constants"]["__all__"] = sorted(getattr(top, "__all__", []))
    proto = importlib.import_module(package + ".protocol")
    for table in ("API_VERSIONS_080", "API_VERSIONS_090"):
        out["constants"][table] = {str(k): list(v) for k, v in
                                   sorted(getattr(proto, table).items())}
    return out


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    json.dump(describe("pykafka"), sys.stdout, indent=1, sort_keys=True)
