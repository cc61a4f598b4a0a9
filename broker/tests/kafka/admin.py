"""confluent-kafka's AdminClient against Goulette: create topics (with
settings), describe their configs, change them (incrementally and all at
once), add partitions, list and describe consumer groups, delete topics;
refusals carry Kafka's error codes.

Usage: admin.py BOOTSTRAP
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

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


def described(topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result()


def error_code(future):
    try:
        future.result()
    except KafkaException as e:
        return e.args[0].code()
    return None


# Incremental: SET one setting, DELETE (back to the default) another; the rest is kept.
change = ConfigResource(ConfigResource.Type.TOPIC, "admin-a", incremental_configs=[
    ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
    ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
])
admin.incremental_alter_configs([change])[change].result()
configs = described("admin-a")
check(configs["retention.bytes"].value == "1048576" and not configs["retention.bytes"].is_default,
      f"retention.bytes after SET: {configs['retention.bytes']}")
check(configs["retention.ms"].is_default,
      f"retention.ms after DELETE: {configs['retention.ms']}")
check(configs["min.insync.replicas"].value == "2", "min.insync.replicas kept")
# Refusals: an unknown setting, more in-sync replicas than replicas, APPEND to a non-list.
refusals = {}
for name, entry in [("unknown", ConfigEntry("flush.ms", "1", incremental_operation=AlterConfigOpType.SET)),
                    ("min_isr", ConfigEntry("min.insync.replicas", "4", incremental_operation=AlterConfigOpType.SET)),
                    ("append", ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND))]:
    bad = ConfigResource(ConfigResource.Type.TOPIC, "admin-a", incremental_configs=[entry])
    refusals[name] = error_code(admin.incremental_alter_configs([bad])[bad])
check(refusals == {"unknown": KafkaError.INVALID_CONFIG, "min_isr": KafkaError.INVALID_CONFIG,
                   "append": KafkaError.INVALID_CONFIG}, f"incremental refusals: {refusals}")
check(described("admin-a")["retention.bytes"].value == "1048576", "a refused change changed nothing")
missing = ConfigResource(ConfigResource.Type.TOPIC, "admin-missing", incremental_configs=[
    ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
code = error_code(admin.incremental_alter_configs([missing])[missing])
check(code == KafkaError.UNKNOWN_TOPIC_OR_PART, f"unknown topic: {code}")

# All at once (AlterConfigs): what is not named goes back to its default.
replace = ConfigResource(ConfigResource.Type.TOPIC, "admin-a", set_config={"retention.ms": "7200000"})
admin.alter_configs([replace])[replace].result()
configs = described("admin-a")
check(configs["retention.ms"].value == "7200000", f"retention.ms after AlterConfigs: {configs['retention.ms']}")
check(configs["retention.bytes"].is_default, f"retention.bytes back to default: {configs['retention.bytes']}")
print("altered", {k: v.value for k, v in configs.items()}, flush=True)

# More partitions: served at once; fewer is INVALID_PARTITIONS.
admin.create_partitions([NewPartitions("admin-a", 6)], operation_timeout=20)["admin-a"].result()
check(len(admin.list_topics(timeout=10).topics["admin-a"].partitions) == 6, "admin-a has 6 partitions")
code = error_code(admin.create_partitions([NewPartitions("admin-a", 3)])["admin-a"])
check(code == KafkaError.INVALID_PARTITIONS, f"shrinking: {code}")
new_partition = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
delivered = []
new_partition.produce("admin-a", value=b"in partition 5", partition=5,
                      on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
new_partition.flush(20)
check(delivered == [(None, 5, 0)], f"produce to the new partition: {delivered}")
print("partitions", 6, flush=True)

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
