"""pykafka's ``pykafka.utils.error_handlers``: dispatch of per-partition
error codes to handlers, and the integer argument check ``valid_int``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

#: ``{error code: [(owned partition, partition response), ...]}``
_PartsByError = dict[int, list[tuple[Any, Any]]]

__all__ = ["handle_partition_responses", "build_parts_by_error",
           "raise_error", "valid_int"]


def handle_partition_responses(
        error_handlers: Mapping[int, Callable[[list[tuple[Any, Any]]], Any]],
        parts_by_error: _PartsByError | None = None,
        success_handler: Callable[[list[tuple[Any, Any]]], Any] | None = None,
        response: Any = None,
        partitions_by_id: Mapping[int, Any] | None = None) -> _PartsByError:
    """handle_partition_responses(error_handlers, parts_by_error=None, success_handler=None, response=None, partitions_by_id=None) -> dict --

    Call ``error_handlers[code](parts)`` for every non-zero error code of
    ``parts_by_error`` (``{code: [(owned_partition, partition_response),
    ...]}``), and ``success_handler(parts)`` for code 0 when given.  Without
    ``parts_by_error`` it is built from ``response`` and
    ``partitions_by_id`` by :func:`build_parts_by_error`.  A code with no
    handler raises ``KeyError``, as in pykafka.  Returns
    ``parts_by_error``."""
    if parts_by_error is None:
        parts_by_error = build_parts_by_error(response, partitions_by_id)
    for code, parts in parts_by_error.items():
        if code != 0:
            error_handlers[code](parts)
        elif success_handler is not None:
            success_handler(parts)
    return parts_by_error


def build_parts_by_error(response: Any,
                         partitions_by_id: Mapping[int, Any] | None
                         ) -> _PartsByError:
    """build_parts_by_error(response, partitions_by_id) -> defaultdict --

    Group a response's partition results by error code:
    ``{err: [(partitions_by_id[pid], partition_response), ...]}``.
    ``response.topics`` is ``{topic: {partition_id: partition_response}}``
    and each partition response has an ``err`` attribute; partitions not in
    ``partitions_by_id`` are left out (all of them when it is None)."""
    parts_by_error: _PartsByError = defaultdict(list)
    for topic_name in response.topics:
        for partition_id, pres in response.topics[topic_name].items():
            if partitions_by_id is None or partition_id not in partitions_by_id:
                continue
            parts_by_error[pres.err].append(
                (partitions_by_id[partition_id], pres))
    return parts_by_error


def raise_error(error: Callable[[str], BaseException],
                info: str = "") -> NoReturn:
    """raise_error(error, info="") --

    Raise ``error(info)``: a handler for error codes that must fail."""
    raise error(info)


def valid_int(param: Any, allow_zero: bool = False,
              allow_negative: bool = False) -> Any:
    """valid_int(param, allow_zero=False, allow_negative=False) -> param --

    pykafka's permissive integer check: ``TypeError`` when ``param + 1``
    fails (not a number), ``ValueError`` when it is negative or zero and
    that is not allowed; otherwise returns ``param`` unchanged."""
    try:
        param + 1
    except TypeError:
        raise TypeError("Expected integer but found argument of type '{}'"
                        .format(type(param)))
    if not allow_negative and param < 0:
        raise ValueError("Expected nonnegative number but got '{}'"
                         .format(param))
    if not allow_zero and param == 0:
        raise ValueError("Expected nonzero number but got '{}'"
                         .format(param))
    return param
