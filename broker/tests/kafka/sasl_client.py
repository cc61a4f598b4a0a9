"""confluent-kafka over SASL_SSL with SCRAM-SHA-512 against Goulette: a
user manages users with AdminClient (AlterUserScramCredentials, then
DescribeUserScramCredentials), and the new user produces and consumes a
message at once.

Usage: sasl_client.py BOOTSTRAP CA_FILE USER PASSWORD NEW_USER NEW_PASSWORD TOPIC
"""
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

bootstrap, ca, user, password, new_user, new_password, topic = sys.argv[1:8]


def settings(name, secret):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": name,
        "sasl.password": secret,
    }


def check(condition, message):
    if not condition:
        raise SystemExit(message)


admin = AdminClient(settings(user, password))
info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
upsert = UserScramCredentialUpsertion(new_user, info, new_password.encode())
for name, future in admin.alter_user_scram_credentials([upsert], request_timeout=20).items():
    future.result()
described = admin.describe_user_scram_credentials([new_user], request_timeout=20)[new_user].result()
mechanisms = [(c.mechanism, c.iterations) for c in described.scram_credential_infos]
check(mechanisms == [(ScramMechanism.SCRAM_SHA_512, 4096)], f"described {mechanisms}")

# The new user, at once: no wait between its creation and its login.
producer = Producer(settings(new_user, new_password))
errors = []
producer.produce(topic, key=b"k", value=b"over SASL_SSL",
                 on_delivery=lambda err, msg: err and errors.append(err))
check(producer.flush(30) == 0 and not errors, f"produce failed: {errors}")

consumer = Consumer({**settings(new_user, new_password), "group.id": "sasl-readers",
                     "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
got = None
for _ in range(60):
    msg = consumer.poll(1.0)
    if msg is not None and msg.error() is None:
        got = msg.value()
        break
consumer.close()
check(got == b"over SASL_SSL", f"consumed {got!r}")
print("ok")
