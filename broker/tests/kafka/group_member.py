"""One member of a confluent-kafka consumer group: subscribes to TOPIC in
GROUP, writes "partition offset value" for each message to OUT (flushed),
then commits it synchronously, and its current assignment to OUT.assigned.
SIGTERM: close (commit and leave the group).

Usage: group_member.py BOOTSTRAP TOPIC GROUP OUT
"""
import signal
import sys

from confluent_kafka import Consumer, KafkaException

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
with open(out, "a", buffering=1) as f:
    while not stop:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        f.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
        consumer.commit(message=msg, asynchronous=False)
consumer.close()
