"""Delayed delivery through Kafka clients: records produced by
confluent-kafka (librdkafka, lz4-compressed batches) with the
goulette-delay-ms header are acknowledged at once, hidden from librdkafka
and kafka-python consumers until due, then read after the records
produced before their time, each once, carrying goulette-delayed-from; a
delay past the broker's maximum is refused with INVALID_RECORD.

Usage: delayed.py BOOTSTRAP
"""
import sys
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from partition_reader import read_partition, read_partition_kafka_python

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
TOPIC, COUNT, DELAY_MS = "later", 50, 3000


def check(condition, message):
    if not condition:
        raise SystemExit(message)


admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result()
time.sleep(1)
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": "lz4", "linger.ms": 5})
failed = []


def delivered(err, msg):
    if err is not None:
        failed.append(err)


sent = time.time()
for i in range(COUNT):
    producer.produce(TOPIC, key=f"k{i}", value=f"later-{i}", headers=[("goulette-delay-ms", str(DELAY_MS).encode())],
                     on_delivery=delivered)
    producer.produce(TOPIC, key=f"k{i}", value=f"now-{i}", on_delivery=delivered)
producer.flush(20)
check(not failed, f"deliveries failed: {failed}")
check(time.time() - sent < DELAY_MS / 1000 - 1, "producing took too long for the test")

errors = []
producer.produce(TOPIC, value=b"too late", headers=[("goulette-delay-ms", str(40 * 86400 * 1000).encode())],
                 on_delivery=lambda err, msg: errors.append(err))
producer.flush(20)
check(len(errors) == 1 and errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD,
      f"a delay past the maximum: {errors}")


def read_all():
    """Every record from the start to the high watermark: [(offset, value, headers)]."""
    return [(o, v.decode(), h) for o, k, v, h in read_partition(bootstrap, TOPIC)]


early = read_all()
check(time.time() - sent < DELAY_MS / 1000, "the first read took too long for the test")
check([v for _, v, _ in early] == [f"now-{i}" for i in range(COUNT)], f"before they are due: {early}")

time.sleep(max(0.0, sent + DELAY_MS / 1000 + 1.5 - time.time()))
records = read_all()
values = [v for _, v, _ in records]
check(values[:COUNT] == [f"now-{i}" for i in range(COUNT)], f"records produced before: {values[:COUNT]}")
check(sorted(values[COUNT:]) == sorted(f"later-{i}" for i in range(COUNT)), f"delayed ones, once: {values[COUNT:]}")
offsets = [o for o, _, _ in records]
check(offsets == sorted(offsets) and offsets[COUNT] > 2 * COUNT - 1, f"the copies come after: {offsets}")
check(all("goulette-delayed-from" in h for _, _, h in records[COUNT:]), "each copy names its original")

# kafka-python (a pure-Python client) reads the same records.
seen = [(o, v.decode()) for o, k, v, h in read_partition_kafka_python(bootstrap, TOPIC)]
check(seen == [(o, v) for o, v, _ in records], f"kafka-python read {len(seen)} records, librdkafka {len(records)}")
print("done", flush=True)
