"""moto's DynamoDB emulator, serving one request at a time.

moto does not isolate concurrent transactions: two TransactWriteItems in flight together can both pass their
conditions. Serialising requests makes it behave like DynamoDB for the contract tests. Its stream iterators also
lose track of the shard when a transaction is cancelled; they are pointed back at it. The server exits when the
process that started it goes away, so a test run never leaves one behind.
"""

import argparse
import os
import threading
import time

from moto.dynamodbstreams import models as streams_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    return handle


def follow_the_live_shard():
    """moto rolls a cancelled transaction back by swapping in a copy of the table, stream shard included, while
    shard iterators keep the old shard and see no record after it. Each read goes to the table's current shard."""
    read = streams_models.ShardIterator.get

    def get(self, limit=1000):
        table = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        if table is not None and table.stream_shard is not None:
            self.stream_shard = table.stream_shard
        return read(self, limit)

    streams_models.ShardIterator.get = get


def exit_with_parent():
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    exit_with_parent()
    follow_the_live_shard()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True)


if __name__ == "__main__":
    main()
