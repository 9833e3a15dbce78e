"""Checks of acidizer's own promises, added to schemathesis's (tests/schemathesis/run.sh loads this file).

- `valid_requests_accepted`: schemathesis's `positive_data_acceptance`, knowing two refusals of valid-looking
  requests the contract makes and JSON Schema cannot say: a body over 1 KiB answers 413, and an `Idempotency-Key`
  already used for another request (another counter or the other operation) answers 422 `idempotency-key-reused`.
- `counters_stay_exact`: every counter the run touched has an exact history (seq 1..N with no gap, each record's
  value the running sum of the deltas, never below 0), and each of its records is a change some 200 answer of
  the run announced, with the same seq, delta, value and request id. So no answer but a 200 ever changed a counter:
  no 4xx (nor anything else) did.
"""

import json
import re
import time
import urllib.parse

import requests
import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

COUNTER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_BODY_BYTES = 1024
KEY_REUSED = "urn:acidizer:problem:idempotency-key-reused"


def _body_size(request) -> int:
    body = request.body
    if body is None:
        return 0
    return len(body.encode() if isinstance(body, str) else body)


def _problem_type(response) -> str | None:
    try:
        return json.loads(response.content).get("type")
    except (ValueError, AttributeError):
        return None


@schemathesis.check
def valid_requests_accepted(ctx, response, case):
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 413 and _body_size(response.request) > MAX_BODY_BYTES:
            return None
        if response.status_code == 422 and _problem_type(response) == KEY_REUSED:
            return None
        raise


def _counter_of(path: str) -> tuple[str | None, str | None]:
    """The counter a request path names, and its operation (`increment`, `decrement` or another word)."""
    segments = path.split("/")[1:]
    if segments and segments[0] in ("value", "increment", "decrement", "history"):
        return "global", segments[0]
    if len(segments) in (2, 3) and segments[0] == "counters":
        name = urllib.parse.unquote(segments[1])
        operation = segments[2] if len(segments) == 3 else "read"
        return (name, operation) if COUNTER_NAME.fullmatch(name) else (None, None)
    return None, None


@schemathesis.check
class counters_stay_exact:
    def __init__(self):
        self.base = None
        # Sets: a response may be checked more than once (shrinking, replays).
        self.counters = set()
        self.announced = {}

    def after_response(self, ctx, response, case):
        url = urllib.parse.urlsplit(response.request.url)
        self.base = f"{url.scheme}://{url.netloc}"
        counter, operation = _counter_of(url.path)
        if counter is None:
            return None
        self.counters.add(counter)
        is_change = response.request.method == "POST" and operation in ("increment", "decrement")
        if is_change and response.status_code == 200:
            answer = json.loads(response.content)
            change = (answer["seq"], answer["delta"], answer["value"], answer["requestId"])
            self.announced.setdefault(answer["counter"], set()).add(change)
        return None

    def after_run(self, ctx):
        if not self.announced:
            raise AssertionError("the run changed no counter: nothing was checked")
        problems = []
        for counter in sorted(self.counters):
            problems.extend(self._check(counter))
        if problems:
            raise AssertionError("counters not exact after the run:\n" + "\n".join(problems))

    def _get(self, path, params=None):
        """A read, retried after the server's `Retry-After` while it answers 429 or 503."""
        for _ in range(10):
            response = requests.get(f"{self.base}{path}", params=params, timeout=10)
            if response.status_code not in (429, 503):
                break
            time.sleep(int(response.headers.get("retry-after", "1")))
        response.raise_for_status()
        return response.json()

    def _check(self, counter):
        quoted = urllib.parse.quote(counter, safe="")
        snapshot = self._get(f"/counters/{quoted}")
        records, before = [], None
        while True:
            params = {"limit": 100} if before is None else {"limit": 100, "before": before}
            page = self._get(f"/counters/{quoted}/history", params)
            records.extend(page["items"])
            before = page["next"]
            if before is None:
                break
        problems = []
        seqs = [record["seq"] for record in records]
        if seqs != list(range(snapshot["seq"], 0, -1)):
            problems.append(f"{counter}: seq {snapshot['seq']} but history seqs {seqs}")
        running = 0
        for record in reversed(records):
            running += record["delta"]
            if record["value"] != running or running < 0:
                problems.append(f"{counter}: record {record} is not the running sum {running}")
        if running != snapshot["value"]:
            problems.append(f"{counter}: value {snapshot['value']}, deltas sum to {running}")
        recorded = {(r["seq"], r["delta"], r["value"], r["requestId"]) for r in records}
        announced = self.announced.get(counter, set())
        for change in sorted(recorded - announced):
            problems.append(f"{counter}: change {change} committed without a 200 answer announcing it")
        for change in sorted(announced - recorded):
            problems.append(f"{counter}: 200 answer {change} is not in the history")
        return problems
