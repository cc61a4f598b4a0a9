"""Checks that GROUP committed every partition of TOPIC at its end (an
empty partition, which nobody consumed, needs no commit).

Usage: committed_at_end.py BOOTSTRAP TOPIC GROUP
Exits non-zero, naming the partition, if one is behind.
"""
import sys

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, group = sys.argv[1:4]
checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
partitions = [TopicPartition(topic, p) for p in checker.list_topics(topic, timeout=10).topics[topic].partitions]
for tp in checker.committed(partitions, timeout=20):
    low, high = checker.get_watermark_offsets(tp, timeout=10)
    if low == high and tp.offset < 0:
        continue
    if tp.error or tp.offset != high:
        raise SystemExit(f"partition {tp.partition}: committed {tp.offset}, end {high} ({tp.error})")
checker.close()
print(f"every partition of {topic} committed at its end", flush=True)
