"""A confluent-kafka consumer tries to join GROUP for 20 s; exits 0 once
the coordinator refused it with INCONSISTENT_GROUP_PROTOCOL (the group is
held by native Goulette consumers), 1 if it joined or never heard back.

Usage: join_refused.py BOOTSTRAP TOPIC GROUP
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError

bootstrap, topic, group = sys.argv[1:4]
assigned = []
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
consumer.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
deadline = time.time() + 20
while time.time() < deadline:
    msg = consumer.poll(0.2)
    if msg is not None and msg.error() and msg.error().code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL:
        print("refused: INCONSISTENT_GROUP_PROTOCOL", flush=True)
        consumer.close()
        sys.exit(0)
    if assigned:
        print(f"joined: {assigned}", flush=True)
        sys.exit(1)
print("no answer", flush=True)
sys.exit(1)
