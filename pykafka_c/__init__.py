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

from .broker import Broker  # noqa: E402
from .client import KafkaClient  # noqa: E402
from .cluster import Cluster  # noqa: E402
from .connection import SslConfig  # noqa: E402
from .partition import Partition  # noqa: E402
from .producer import Producer  # noqa: E402
from .simpleconsumer import SimpleConsumer  # noqa: E402
from .balancedconsumer import BalancedConsumer  # noqa: E402
from .managedbalancedconsumer import ManagedBalancedConsumer  # noqa: E402
from .membershipprotocol import (CooperativeStickyProtocol,  # noqa: E402
                                 RangeProtocol, RoundRobinProtocol)
from .topic import Topic  # noqa: E402
from ._install import install_as_pykafka  # noqa: E402

__all__ = ["Broker", "SimpleConsumer", "Cluster", "Partition", "Producer",
           "Topic", "SslConfig", "KafkaClient", "BalancedConsumer",
           "ManagedBalancedConsumer", "RangeProtocol", "RoundRobinProtocol",
           "CooperativeStickyProtocol", "install_as_pykafka"]
