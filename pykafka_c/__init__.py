"""pykafka_c: a drop-in replacement for pykafka with a C core.

``import pykafka_c as pykafka`` gives pykafka's API; see
:func:`install_as_pykafka` to make ``import pykafka`` itself load pykafka_c.
"""

__version__ = "0.1.0"

from . import exceptions as _exceptions
from . import _core

_core._set_exceptions(
    {name: obj for name, obj in vars(_exceptions).items()
     if isinstance(obj, type) and issubclass(obj, BaseException)},
    _exceptions.error_for_code,
)

__all__ = []
