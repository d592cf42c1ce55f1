"""A consume-transform-produce worker for tests/test_txn_producer.py's
kill test: ``python txn_worker.py BROKERS SOURCE SINK GROUP TXN_ID TOTAL``.

It fences any earlier worker with the same transactional id
(init_transactions, which also completes or aborts that worker's last
transaction), then reads SOURCE from the group's committed offset with
read_committed and, five messages per transaction, writes ``out-<i>`` for
each ``in-<i>`` to SINK with the offsets sent to the transaction, until the
committed offset reaches TOTAL.  The test SIGKILLs it at random points."""

import sys

from pykafka_c import KafkaClient

BATCH = 5


def main(brokers, source_name, sink_name, group, txn_id, total):
    client = KafkaClient(hosts=brokers)
    source, sink = client.topics[source_name], client.topics[sink_name]
    producer = sink.get_producer(required_acks=-1, transactional_id=txn_id,
                                 linger_ms=5, min_queued_messages=1)
    producer.init_transactions()
    consumer = source.get_simple_consumer(
        consumer_group=group, isolation_level=1, auto_commit_enable=False,
        consumer_timeout_ms=2000)
    partition = consumer.partitions[0]
    done = max(0, consumer.held_offsets[0] + 1)   # -2: nothing consumed
    while done < total:
        with producer.transaction():
            for _ in range(min(BATCH, total - done)):
                message = consumer.consume()
                if message is None:
                    raise RuntimeError("no message at offset %d" % done)
                producer.produce(message.value.replace(b"in-", b"out-"))
                done = message.offset + 1
            producer.send_offsets_to_transaction([(partition, done)], group)
    producer.stop()
    consumer.stop()
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
