"""confluent-kafka's AdminClient against Goulette: create topics (with
settings), describe their configs, list and describe consumer groups,
delete topics; refusals carry Kafka's error codes.

Usage: admin.py BOOTSTRAP
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})


def check(condition, message):
    if not condition:
        raise SystemExit(message)


# Create: one with settings, one with the cluster's defaults.
futures = admin.create_topics([
    NewTopic("admin-a", num_partitions=4, replication_factor=3,
             config={"retention.ms": "3600000", "min.insync.replicas": "2"}),
    NewTopic("admin-b", num_partitions=2, replication_factor=1),
], operation_timeout=20)
for name, future in futures.items():
    future.result()
print("created", sorted(futures), flush=True)

# Refusals: an existing topic, a bad setting, too many replicas.
errors = {}
for topic in [NewTopic("admin-a", 1, 1), NewTopic("admin-c", 1, 1, config={"segment.bytes": "1"}),
              NewTopic("admin-d", 1, 9)]:
    try:
        admin.create_topics([topic])[topic.topic].result()
    except KafkaException as e:
        errors[topic.topic] = e.args[0].code()
check(errors == {"admin-a": KafkaError.TOPIC_ALREADY_EXISTS, "admin-c": KafkaError.INVALID_CONFIG,
                 "admin-d": KafkaError.INVALID_REPLICATION_FACTOR}, f"refusals: {errors}")

metadata = admin.list_topics(timeout=10)
check(len(metadata.topics["admin-a"].partitions) == 4, "admin-a has 4 partitions")
check(len(metadata.brokers) == 3, f"3 brokers, got {metadata.brokers}")

resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-a")
configs = admin.describe_configs([resource])[resource].result()
values = {k: v.value for k, v in configs.items()}
check(values["retention.ms"] == "3600000" and not configs["retention.ms"].is_default, f"retention.ms: {values}")
check(values["min.insync.replicas"] == "2", f"min.insync.replicas: {values}")
check(values["retention.bytes"] == "-1" and configs["retention.bytes"].is_default, f"retention.bytes: {values}")
print("configs", values, flush=True)

# A group with a member, then listed and described.
producer = Producer({"bootstrap.servers": bootstrap})
producer.produce("admin-b", value=b"x")
producer.flush(10)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "admin-group", "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000})
consumer.subscribe(["admin-b"])
deadline = time.time() + 30
while time.time() < deadline:
    msg = consumer.poll(0.5)
    if msg is not None and not msg.error():
        break
else:
    raise SystemExit("the group member consumed nothing")
listed = admin.list_consumer_groups().result(timeout=10)
names = {g.group_id for g in listed.valid}
check("admin-group" in names, f"listed groups: {names}")
described = admin.describe_consumer_groups(["admin-group"])["admin-group"].result(timeout=10)
check(len(described.members) == 1, f"members: {described.members}")
check(str(described.state).endswith("STABLE"), f"state: {described.state}")
assigned = sorted(tp.partition for tp in described.members[0].assignment.topic_partitions)
check(assigned == [0, 1], f"assignment: {assigned}")
consumer.close()
print("group", described.group_id, described.state, assigned, flush=True)

for name, future in admin.delete_topics(["admin-a", "admin-b"], operation_timeout=20).items():
    future.result()
deadline = time.time() + 20
while "admin-a" in admin.list_topics(timeout=10).topics and time.time() < deadline:
    time.sleep(0.2)
check("admin-a" not in admin.list_topics(timeout=10).topics, "admin-a deleted")
print("deleted", flush=True)
