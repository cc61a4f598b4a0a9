"""Goulette's stand-in for kafka-python's test/service.py, which its source
archive lacks: with KAFKA_URI set, the fixtures only use ExternalService,
the brokers Goulette's test started."""


class ExternalService:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def start(self):
        pass

    def stop(self):
        pass

    def dump_logs(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("Goulette runs kafka-python's suite against running brokers (KAFKA_URI)")
