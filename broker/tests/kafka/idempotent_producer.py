"""An idempotent, acks=all confluent-kafka (librdkafka) producer writes
numbered messages with keys and headers in every codec; a consumer reads
them back byte-exact, in order per partition.

Usage: idempotent_producer.py BOOTSTRAP TOPIC COUNT
Prints one line per codec and exits non-zero on any mismatch.
"""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def produce(codec):
    errors = []
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 5,
    })

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))

    for i in range(count):
        value = f"{codec}-{i}-".encode() + bytes([0xE9, 0x00, 0xFF]) + b"x" * (i % 50)
        producer.produce(topic, key=f"k{i % 7}".encode(), value=value,
                         headers=[("codec", codec.encode()), ("n", str(i).encode()), ("n", b"dup")],
                         on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(60)
    if left or errors:
        raise SystemExit(f"{codec}: {left} undelivered, errors {errors[:3]}")


def read_all(expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-unused",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    got = []
    while len(got) < expected:
        msg = consumer.poll(10)
        if msg is None:
            raise SystemExit(f"timed out after {len(got)} of {expected} messages")
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg)
    consumer.close()
    return got


for codec in CODECS:
    produce(codec)
    print(f"{codec}: {count} acknowledged", flush=True)

messages = read_all(count * len(CODECS))
seen = {}
ids = set()
for msg in messages:
    headers = msg.headers() or []
    codec = dict(headers)["codec"].decode()
    n = int([v for k, v in headers if k == "n"][0])
    want = f"{codec}-{n}-".encode() + bytes([0xE9, 0x00, 0xFF]) + b"x" * (n % 50)
    if msg.value() != want or msg.key() != f"k{n % 7}".encode():
        raise SystemExit(f"message {codec}/{n} differs: {msg.key()!r} {msg.value()!r}")
    if [k for k, _ in headers] != ["codec", "n", "n"]:
        raise SystemExit(f"headers of {codec}/{n} differ: {headers}")
    if (codec, n) in ids:
        raise SystemExit(f"message {codec}/{n} was delivered twice")
    ids.add((codec, n))
    key = (codec, msg.key())
    if key in seen and seen[key] >= n:
        raise SystemExit(f"{codec}: key {msg.key()!r} out of order ({seen[key]} then {n})")
    seen[key] = n
print(f"read back {len(messages)} messages byte-exact, in order per key", flush=True)
