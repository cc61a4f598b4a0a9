"""Three confluent-kafka consumers in one group split a topic's partitions;
one leaves (SIGTERM, a clean close), one is killed -9, and the last ends
with every message consumed and every partition's position committed at
its end.

Usage: group_consumers.py BOOTSTRAP TOPIC COUNT WORKDIR
"""
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, count, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
group = "g-" + topic
here = os.path.dirname(os.path.abspath(__file__))


def produce(first, n):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(first, first + n):
        producer.produce(topic, key=str(i).encode(), value=f"m{i}".encode())
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("undelivered messages")


def consumed():
    values = set()
    for i in range(3):
        path = os.path.join(workdir, f"member-{i}.txt")
        if os.path.exists(path):
            with open(path) as f:
                values.update(line.split()[2] for line in f if len(line.split()) == 3)
    return values


def wait_until(what, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def assignments():
    """Each member's current assignment (a set of partitions)."""
    out = []
    for i in range(3):
        path = os.path.join(workdir, f"member-{i}.txt.assigned")
        if not os.path.exists(path):
            out.append(set())
            continue
        with open(path) as f:
            out.append({int(p) for p in f.read().split(",") if p})
    return out


def split_evenly():
    parts = assignments()
    union = set().union(*parts)
    return [len(p) for p in parts] == [2, 2, 2] and union == set(range(6))


produce(0, count)
members = [subprocess.Popen([sys.executable, os.path.join(here, "group_member.py"), bootstrap, topic, group,
                             os.path.join(workdir, f"member-{i}.txt")]) for i in range(3)]
try:
    wait_until("the 6 partitions split 2/2/2 among the 3 members", split_evenly, 60)
    print(f"assignments: {assignments()}", flush=True)
    wait_until("the first batch consumed", lambda: len(consumed()) >= count, 60)
    members[0].send_signal(signal.SIGTERM)
    members[0].wait(30)
    members[1].send_signal(signal.SIGKILL)
    members[1].wait(30)
    produce(count, count)
    wanted = {f"m{i}" for i in range(2 * count)}
    wait_until("every message consumed by the last member", lambda: wanted <= consumed(), 60)
    members[2].send_signal(signal.SIGTERM)
    if members[2].wait(30) != 0:
        raise SystemExit("the last member failed")
finally:
    for m in members:
        if m.poll() is None:
            m.kill()

checker = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
partitions = [TopicPartition(topic, p) for p in checker.list_topics(topic, timeout=10).topics[topic].partitions]
committed = checker.committed(partitions, timeout=10)
for tp in committed:
    _, high = checker.get_watermark_offsets(tp, timeout=10)
    if tp.error or tp.offset != high:
        raise SystemExit(f"partition {tp.partition}: committed {tp.offset}, end {high} ({tp.error})")
checker.close()
print(f"all {2 * count} messages consumed; every partition committed at its end", flush=True)
