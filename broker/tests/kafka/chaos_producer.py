"""The chaos run's Kafka-protocol producer: an idempotent acks=all
confluent-kafka producer sending `p{ID}-{seq}` (key `p{ID}-k{seq % 64}`) at
RATE messages/s until SIGTERM, then flushing. Each acknowledgement is a line
"partition offset seq" in ACKS; the last line of stdout is
"sent N failed M".

Usage: chaos_producer.py BOOTSTRAP TOPIC ID RATE ACKS
"""
import signal
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, ident, rate, acks_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
failed = 0
producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 2,
    "message.timeout.ms": 120000,
    "topic.metadata.refresh.interval.ms": 1000,
})
with open(acks_path, "w", buffering=1) as acks:

    def delivered(err, msg):
        global failed
        if err is None:
            seq = msg.value().decode().split("-")[1]
            acks.write(f"{msg.partition()} {msg.offset()} {seq}\n")
        else:
            failed += 1

    seq = 0
    started = time.time()
    while not stop:
        due = started + seq / rate
        if time.time() < due:
            # Never negative: librdkafka reads a negative timeout as "wait forever".
            producer.poll(max(0.0, min(due - time.time(), 0.05)))
            continue
        producer.produce(topic, key=f"p{ident}-k{seq % 64}".encode(), value=f"p{ident}-{seq}".encode(),
                         on_delivery=delivered)
        producer.poll(0)
        seq += 1
    left = producer.flush(90)
print(f"sent {seq} failed {failed + left}", flush=True)
