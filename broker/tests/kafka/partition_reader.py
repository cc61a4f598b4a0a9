"""Reading a whole partition 0 with librdkafka, for the Kafka-client tests."""
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def read_partition(bootstrap, topic, timeout=20):
    """Every record of partition 0 from the start to the high watermark:
    [(offset, key, value, headers)], key and value as bytes (or None)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = consumer.poll(1)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                break
            raise KafkaException(msg.error())
        out.append((msg.offset(), msg.key(), msg.value(), dict(msg.headers() or [])))
    consumer.close()
    return out


def read_partition_kafka_python(bootstrap, topic, timeout=20):
    """The same with kafka-python (a pure-Python client): [(offset, key,
    value, headers)]."""
    from kafka import KafkaConsumer, TopicPartition

    partition = TopicPartition(topic, 0)
    reader = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None)
    reader.assign([partition])
    reader.seek_to_beginning(partition)
    end = reader.end_offsets([partition])[partition]
    out = []
    deadline = time.time() + timeout
    while reader.position(partition) < end and time.time() < deadline:
        for messages in reader.poll(timeout_ms=500).values():
            out.extend((m.offset, m.key, m.value, dict(m.headers or [])) for m in messages)
    reader.close()
    return out
