"""Cold start of the Lambda bootstraps: the time from spawning each one to its first request to the Runtime API
(`GET /2018-06-01/runtime/invocation/next`), which is when Lambda considers its init done; the process's peak
resident memory by then; and the size of the bootstrap zipped as SAM zips it (deflate).

Usage: python3 tests/support/cold_start.py [target/lambda]  (after `cargo lambda build --release`)
"""

import http.server
import io
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile

FUNCTIONS = ["acidizer-api", "acidizer-ws", "acidizer-stream"]
RUNS = 10
first_poll = {}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        first_poll.setdefault("at", time.perf_counter())
        time.sleep(0.2)
        self.send_response(500)
        self.end_headers()


def main():
    bootstraps = sys.argv[1] if len(sys.argv) > 1 else "target/lambda"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        PATH=os.environ.get("PATH", ""),
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_LOG_GROUP_NAME="cold-start",
        AWS_LAMBDA_LOG_STREAM_NAME="cold-start",
        AWS_LAMBDA_LOG_FORMAT="JSON",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="cold-start",
        AWS_SECRET_ACCESS_KEY="cold-start",
        COUNTER_TABLE="counters",
        CONNECTIONS_TABLE="connections",
        WEBSOCKET_ENDPOINT="https://example.invalid/prod",
    )
    for name in FUNCTIONS:
        times, peaks = [], []
        for _ in range(RUNS):
            first_poll.clear()
            started = time.perf_counter()
            process = subprocess.Popen(
                [os.path.join(bootstraps, name, "bootstrap")],
                env=dict(env, AWS_LAMBDA_FUNCTION_NAME=name),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while "at" not in first_poll and time.perf_counter() - started < 5:
                time.sleep(0.0005)
            times.append((first_poll.get("at", started + 5) - started) * 1000)
            peaks.append(peak_rss_kib(process.pid) / 1024)
            process.kill()
            process.wait()
        bootstrap = os.path.join(bootstraps, name, "bootstrap")
        size = os.path.getsize(bootstrap) / 2**20
        print(
            f"{name}: {size:.1f} MiB, zipped {zipped_size(bootstrap) / 1e6:.2f} MB, "
            f"init median {statistics.median(times):.1f} ms, max {max(times):.1f} ms, "
            f"peak RSS at init median {statistics.median(peaks):.1f} MiB, max {max(peaks):.1f} MiB"
        )


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1])


def zipped_size(bootstrap):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(bootstrap, "bootstrap")
    return len(archive.getvalue())


if __name__ == "__main__":
    main()
