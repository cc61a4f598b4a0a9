"""The chaos run's Kafka-protocol consumer: follows every partition of
TOPIC from the beginning with confluent-kafka (assigned, no group), writing
"partition offset value" per record to OUT until SIGTERM.

Usage: chaos_consumer.py BOOTSTRAP TOPIC PARTITIONS OUT
"""
import os
import signal
import sys

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, partitions, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-kafka-reader", "enable.auto.commit": False,
                     "topic.metadata.refresh.interval.ms": 1000})
consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
with open(out, "w", buffering=1) as f:
    while not stop:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        f.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
# Nothing to commit (assigned, auto-commit off): exit without librdkafka's
# close, which waits for the group coordinator and was seen to hang after a
# run of faults. Every record is already written (line-buffered, closed above).
os._exit(0)
