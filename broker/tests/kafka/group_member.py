"""One member of a confluent-kafka consumer group: subscribes to TOPIC in
GROUP, writes "partition offset value" for each message to OUT (flushed),
then commits it synchronously, and its current assignment to OUT.assigned.
SIGTERM: close (commit and leave the group).

Usage: group_member.py BOOTSTRAP TOPIC GROUP OUT
"""
import signal
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException

bootstrap, topic, group, out = sys.argv[1:5]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
})
def assigned(_consumer, partitions):
    with open(out + ".assigned", "w") as f:
        f.write(",".join(str(p.partition) for p in partitions))


def revoked(_consumer, _partitions):
    with open(out + ".assigned", "w") as f:
        f.write("")


consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked)


def commit(**what):
    """Commits synchronously; False (said on stderr) when a commit is
    refused during a rebalance (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION)
    or a coordinator move: Kafka applications catch that and commit again,
    and the next owner of a partition re-reads from its last commit."""
    try:
        consumer.commit(asynchronous=False, **what)
        return True
    except KafkaException as e:
        if e.args[0].code() == KafkaError._NO_OFFSET:
            return True  # nothing consumed since the last commit
        if e.args[0].fatal():
            raise
        print(f"commit not done: {e.args[0]}", file=sys.stderr, flush=True)
        return False


uncommitted = False
with open(out, "a", buffering=1) as f:
    while not stop:
        msg = consumer.poll(0.2)
        if uncommitted:
            # What was consumed of the partitions still assigned.
            uncommitted = not commit()
        if msg is None:
            continue
        if msg.error():
            # Transient errors (a coordinator or leader moving) are retried
            # by librdkafka; only a fatal one ends the member.
            if msg.error().fatal():
                raise KafkaException(msg.error())
            print(f"transient: {msg.error()}", file=sys.stderr, flush=True)
            continue
        f.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
        uncommitted = not commit(message=msg)
if uncommitted:
    commit()
consumer.close()
