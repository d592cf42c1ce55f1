"""``ManagedBalancedConsumer``: pykafka's balanced consumer on Kafka's group
membership API.

Same behaviour as :class:`pykafka_c.balancedconsumer.BalancedConsumer`
(both use the broker's group coordinator in pykafka_c; see that module for
how a member joins, heartbeats, commits and rebalances), with pykafka's
ManagedBalancedConsumer signature: no ZooKeeper parameters,
``heartbeat_interval_ms`` after ``compacted_topic``, and
``use_rdkafka=True`` raising ImportError.

Fixed relative to pykafka (see pykafka-api.md section 5.2): requests use the
versions ApiVersions negotiates, not version 0; only the leader computes the
assignment, from every member's subscription; assignments carry UserData so
Java members can read them; the shared ``RangeProtocol`` object is never
mutated; the session timeout is configurable (``session_timeout_ms``,
default pykafka's 30000); a member the coordinator expired rejoins with a
fresh member id; a moved coordinator is found again without user action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .balancedconsumer import BalancedConsumer
from .common import OffsetType
from .membershipprotocol import RangeProtocol

if TYPE_CHECKING:
    from ._typing import Deserializer
    from .balancedconsumer import RebalanceCallback
    from .cluster import Cluster
    from .membershipprotocol import GroupMembershipProtocol
    from .topic import Topic

__all__ = ["ManagedBalancedConsumer"]


class ManagedBalancedConsumer(BalancedConsumer):
    """A self-balancing consumer that uses Kafka's group membership API.

    Maintains one internal SimpleConsumer for the partitions the group
    leader assigned to this member."""

    def __init__(self,
                 topic: Topic,
                 cluster: Cluster,
                 consumer_group: bytes | str,
                 fetch_message_max_bytes: int = 1024 * 1024,
                 num_consumer_fetchers: int = 1,
                 auto_commit_enable: bool = False,
                 auto_commit_interval_ms: int = 60 * 1000,
                 queued_max_messages: int = 2000,
                 fetch_min_bytes: int = 1,
                 fetch_error_backoff_ms: int = 500,
                 fetch_wait_max_ms: int = 100,
                 offsets_channel_backoff_ms: int = 1000,
                 offsets_commit_max_retries: int = 5,
                 auto_offset_reset: int | str = OffsetType.EARLIEST,
                 consumer_timeout_ms: int = -1,
                 rebalance_max_retries: int = 5,
                 rebalance_backoff_ms: int = 2 * 1000,
                 auto_start: bool = True,
                 reset_offset_on_start: bool = False,
                 post_rebalance_callback: RebalanceCallback | None = None,
                 use_rdkafka: bool = False,
                 compacted_topic: bool = True,
                 heartbeat_interval_ms: int = 3000,
                 membership_protocol: GroupMembershipProtocol
                 = RangeProtocol,
                 deserializer: Deserializer | None = None,
                 reset_offset_on_fetch: bool = True,
                 *,
                 session_timeout_ms: int = 30 * 1000,
                 rebalance_timeout_ms: int | None = None,
                 group_instance_id: str | None = None) -> None:
        if use_rdkafka is True:
            raise ImportError("use_rdkafka is not available for {}".format(
                self.__class__.__name__))
        self._setup(
            topic, cluster, consumer_group,
            fetch_message_max_bytes=fetch_message_max_bytes,
            num_consumer_fetchers=num_consumer_fetchers,
            auto_commit_enable=auto_commit_enable,
            auto_commit_interval_ms=auto_commit_interval_ms,
            queued_max_messages=queued_max_messages,
            fetch_min_bytes=fetch_min_bytes,
            fetch_error_backoff_ms=fetch_error_backoff_ms,
            fetch_wait_max_ms=fetch_wait_max_ms,
            offsets_channel_backoff_ms=offsets_channel_backoff_ms,
            offsets_commit_max_retries=offsets_commit_max_retries,
            auto_offset_reset=auto_offset_reset,
            consumer_timeout_ms=consumer_timeout_ms,
            rebalance_max_retries=rebalance_max_retries,
            rebalance_backoff_ms=rebalance_backoff_ms,
            reset_offset_on_start=reset_offset_on_start,
            post_rebalance_callback=post_rebalance_callback,
            use_rdkafka=use_rdkafka,
            compacted_topic=compacted_topic,
            heartbeat_interval_ms=heartbeat_interval_ms,
            membership_protocol=membership_protocol,
            deserializer=deserializer,
            reset_offset_on_fetch=reset_offset_on_fetch,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            group_instance_id=group_instance_id)
        if auto_start is True:
            self.start()
