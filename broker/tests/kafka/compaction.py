"""A compacted topic through confluent-kafka (librdkafka): created with
Kafka's compaction settings, keyless records refused with INVALID_RECORD,
and consumers from the start (librdkafka, then kafka-python) reading the
compacted log (batches with offsets left out, some emptied) to one record
per key: the latest value, or the key's tombstone (a null value).

Usage: compaction.py BOOTSTRAP
"""
import sys
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from partition_reader import read_partition, read_partition_kafka_python

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
TOPIC, KEYS, UPDATES, DELETED = "compacted", 100, 20, 10


def check(condition, message):
    if not condition:
        raise SystemExit(message)


settings = {"cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "3600000"}
admin.create_topics([NewTopic(TOPIC, 1, 1, config=settings)])[TOPIC].result()
resource = ConfigResource(ConfigResource.Type.TOPIC, TOPIC)
configs = admin.describe_configs([resource])[resource].result()
for name, value in settings.items():
    check(configs[name].value == value and not configs[name].is_default, f"{name}: {configs[name]}")

producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "batch.size": 16384, "linger.ms": 5})
errors = []
producer.produce(TOPIC, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
producer.flush(20)
check(len(errors) == 1 and errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD,
      f"a keyless record on a compacted topic: {errors}")

failed = []
def delivered(err, msg):
    if err is not None:
        failed.append(err)

for round in range(UPDATES):
    for k in range(KEYS):
        producer.produce(TOPIC, key=f"k{k}", value=f"v{round}", on_delivery=delivered)
    producer.poll(0)
for k in range(DELETED):
    producer.produce(TOPIC, key=f"k{k}", value=None, on_delivery=delivered)
producer.flush(30)
check(not failed, f"deliveries failed: {failed}")


def read_all():
    """Every record from the start to the high watermark: [(offset, key, value)]."""
    return [(o, k.decode(), None if v is None else v.decode()) for o, k, v, h in read_partition(bootstrap, TOPIC)]


deadline = time.time() + 90
while True:
    records = read_all()
    if len(records) == KEYS:
        break
    check(time.time() < deadline, f"still {len(records)} records, want {KEYS}")
    time.sleep(0.5)

offsets = [o for o, _, _ in records]
check(offsets == sorted(offsets) and len(set(offsets)) == len(offsets), "offsets rise, with gaps")
table = {k: v for _, k, v in records}
for k in range(KEYS):
    want = None if k < DELETED else f"v{UPDATES - 1}"
    check(table.get(f"k{k}", "missing") == want, f"k{k}: {table.get(f'k{k}', 'missing')}, want {want}")
print("compacted", len(records), "records, last offset", offsets[-1], flush=True)

# kafka-python (a pure-Python client) reads the same compacted log.
seen = [(o, k.decode(), None if v is None else v.decode())
        for o, k, v, h in read_partition_kafka_python(bootstrap, TOPIC)]
check(seen == records, f"kafka-python read {len(seen)} records, librdkafka {len(records)}")

# Back to delete: the topic takes keyless records again.
change = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, incremental_configs=[
    ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)])
admin.incremental_alter_configs([change])[change].result()
check(admin.describe_configs([resource])[resource].result()["cleanup.policy"].value == "delete", "policy set back")
time.sleep(1)
errors.clear()
producer.produce(TOPIC, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
producer.flush(20)
check(errors == [None], f"a keyless record once the topic is not compacted: {errors}")
print("done", flush=True)
