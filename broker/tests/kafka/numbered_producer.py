"""An idempotent acks=all confluent-kafka producer writes numbered messages
0, 1, 2, ... to TOPIC for SECONDS seconds (a bounded window in flight),
then flushes; each acknowledged number is appended to ACKED.

Usage: numbered_producer.py BOOTSTRAP TOPIC SECONDS ACKED
Exits non-zero if a message failed for good.
"""
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, seconds, acked_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
failed = []
producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
    "message.timeout.ms": 60000,
    "retry.backoff.ms": 50,
    "topic.metadata.refresh.interval.ms": 1000,
})
with open(acked_path, "w", buffering=1) as acked:

    def delivered(err, msg):
        if err is None:
            acked.write(msg.value().decode() + "\n")
        else:
            failed.append(str(err))

    n = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        if len(producer) < 1000:
            producer.produce(topic, value=str(n).encode(), on_delivery=delivered)
            n += 1
        producer.poll(0 if len(producer) < 1000 else 0.005)
    left = producer.flush(90)
print(f"sent {n}, undelivered {left}, failed {len(failed)}", flush=True)
if left or failed:
    raise SystemExit(f"failed deliveries: {failed[:3]}")
