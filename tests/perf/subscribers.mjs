// Live delivery measured by a client of another kind than the server: Node.js with the `ws` package (pinned in
// tests/tools), one process. SUBSCRIBERS WebSocket subscribers of one fresh counter, each confirmed registered by a
// `ping`'s `pong`; then an increment every 100 ms (the next one waits for the answer) for SECONDS; for each change
// and subscriber, the time from the change's HTTP answer until the subscriber has it or a later value (a subscriber
// that lags may get the latest value only: that change is counted as superseded). With SERVER_PID, the server's
// resident memory is read before and after the subscribers connected. Afterwards the counter's history is checked
// exact. Prints a summary, and the figures as JSON on its last line; exits non-zero when a subscriber missed the
// last value or the history is not exact.
//
// The subscribers are held by THREADS worker threads of the process (default: one per core), each with its own
// event loop; the main thread only sends the increments and notes when each was answered. On one thread, an
// answer would wait behind the thousands of messages queued before it and be noted late: the latency would look
// shorter than it is, and the increments would come slower than one every 100 ms. Arrival times go into memory
// the threads share, on one clock (`timeOrigin + now()`).
// Usage: [THREADS=N] node tests/perf/subscribers.mjs BASE_URL SUBSCRIBERS SECONDS [SERVER_PID]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const require = createRequire(new URL('../tools/', import.meta.url));
const { WebSocket } = require('ws');

const interval = 100;
const connectingAtOnce = 64;
const catchUpWithin = 10_000;
/** Milliseconds on a clock every thread of the process reads alike. */
const clock = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The subscribers' shared record: when each subscriber first had each `seq` or a later value. */
function record(shared) {
  return {
    // arrivals[s * (changes + 1) + seq]: when subscriber s first had `seq` or a later value (0: not yet).
    arrivals: new Float64Array(shared.arrivals),
    lastSeen: new Uint32Array(shared.lastSeen),
    superseded: new Uint8Array(shared.superseded),
  };
}

if (isMainThread) {
  await main();
} else {
  await holdSubscribers(workerData);
}

/** A worker thread: subscribers `from`..`to`, until the main thread says stop; then how many the server closed. */
async function holdSubscribers({ wsUrl, from, to, shared, changes }) {
  const { arrivals, lastSeen, superseded } = record(shared);
  let closedByServer = 0;
  let stopping = false;
  const seqField = Buffer.from('"seq":');
  const valueType = Buffer.from('"type":"value"');

  /** The decimal number in `bytes` from `start`. */
  function readNumber(bytes, start) {
    let n = 0;
    for (let i = start; i < bytes.length && bytes[i] >= 48 && bytes[i] <= 57; i += 1) n = n * 10 + (bytes[i] - 48);
    return n;
  }

  function subscribe(index) {
    return new Promise((resolve, reject) => {
      // The client does as little as it can per message, so that what is measured is the server: no UTF-8
      // validation, and a value message's `seq` read off its bytes rather than parsing the whole message.
      const socket = new WebSocket(wsUrl, { perMessageDeflate: false, skipUTF8Validation: true });
      let registered = false;
      socket.on('open', () => socket.send('{"action":"ping"}'));
      socket.on('message', (data) => {
        const now = clock();
        if (!registered) {
          if (JSON.parse(data.toString()).type === 'pong') {
            registered = true;
            resolve(socket);
          }
          return;
        }
        const at = data.indexOf(seqField);
        if (data.indexOf(valueType) < 0 || at < 0) return;
        const seq = readNumber(data, at + seqField.length);
        if (seq > changes) return;
        const row = index * (changes + 1);
        for (let next = lastSeen[index] + 1; next <= seq; next += 1) {
          arrivals[row + next] = now;
          superseded[row + next] = next < seq ? 1 : 0;
        }
        lastSeen[index] = Math.max(lastSeen[index], seq);
      });
      socket.on('error', (error) => (registered ? undefined : reject(error)));
      socket.on('close', () => {
        if (registered && !stopping) closedByServer += 1;
      });
    });
  }

  const sockets = [];
  for (let next = from; next < to; next += connectingAtOnce) {
    const batch = [];
    for (let index = next; index < Math.min(to, next + connectingAtOnce); index += 1) batch.push(subscribe(index));
    sockets.push(...(await Promise.all(batch)));
  }
  parentPort.postMessage({ connected: sockets.length });
  await new Promise((resolve) => parentPort.once('message', resolve));
  stopping = true;
  for (const socket of sockets) socket.terminate();
  parentPort.postMessage({ closedByServer });
}

async function main() {
  const [base, subscribersArg, secondsArg, serverPid] = process.argv.slice(2);
  if (!base || !subscribersArg || !secondsArg) {
    console.error('usage: [THREADS=N] node tests/perf/subscribers.mjs BASE_URL SUBSCRIBERS SECONDS [SERVER_PID]');
    process.exit(2);
  }
  const subscribers = Number(subscribersArg);
  const changes = Math.round(Number(secondsArg) * 10);
  const counter = `live-${randomUUID().slice(0, 8)}`;
  const wsUrl = `${base.replace(/^http/, 'ws')}/ws?counter=${counter}`;
  const rssKib = () => {
    if (!serverPid) return null;
    const line = readFileSync(`/proc/${serverPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return Number(line.split(/\s+/)[1]);
  };
  const threads = Math.max(1, Math.min(subscribers, Number(process.env.THREADS ?? availableParallelism())));
  const shared = {
    arrivals: new SharedArrayBuffer(8 * subscribers * (changes + 1)),
    lastSeen: new SharedArrayBuffer(4 * subscribers),
    superseded: new SharedArrayBuffer(subscribers * (changes + 1)),
  };
  const { arrivals, lastSeen, superseded } = record(shared);

  const rssBefore = rssKib();
  /** Each worker thread, and its next reply. */
  const workers = [];
  for (let t = 0; t < threads; t += 1) {
    const from = Math.floor((t * subscribers) / threads);
    const to = Math.floor(((t + 1) * subscribers) / threads);
    const worker = new Worker(new URL(import.meta.url), { workerData: { wsUrl, from, to, shared, changes } });
    const replies = [];
    const waiting = [];
    worker.on('message', (reply) => (waiting.length ? waiting.shift()(reply) : replies.push(reply)));
    worker.on('error', (error) => {
      console.error(`a subscriber thread failed: ${error.stack ?? error}`);
      process.exit(1);
    });
    const next = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise((resolve) => waiting.push(resolve)));
    workers.push({ worker, next });
  }
  await Promise.all(workers.map(({ next }) => next()));
  await sleep(1000);
  const rssAfter = rssKib();
  console.log(`${subscribers} subscribers of ${counter} connected, on ${threads} threads`);

  /** Sends one increment, again with the same key after a 429 or 503 (for up to 10 s); its answer's `seq`, or 0. */
  async function increment(key) {
    const until = performance.now() + 10_000;
    for (;;) {
      const response = await fetch(`${base}/counters/${counter}/increment`, {
        method: 'POST',
        headers: { 'Idempotency-Key': key },
      });
      if (response.ok) return (await response.json()).seq;
      await response.arrayBuffer();
      if (![429, 503].includes(response.status) || performance.now() > until) return 0;
      await sleep(Number(response.headers.get('retry-after') ?? 1) * 1000);
    }
  }

  const answeredAt = new Float64Array(changes + 1);
  let failures = 0;
  let last = 0;
  for (let i = 0; i < changes; i += 1) {
    const started = performance.now();
    const seq = await increment(`${counter}-${i}`);
    if (seq > 0 && seq <= changes) {
      answeredAt[seq] = clock();
      last = Math.max(last, seq);
    } else {
      failures += 1;
    }
    await sleep(Math.max(0, interval - (performance.now() - started)));
  }
  const catchUpBy = performance.now() + catchUpWithin;
  while (performance.now() < catchUpBy && lastSeen.some((seen) => seen < last)) await sleep(10);
  let closedByServer = 0;
  for (const { worker, next } of workers) {
    worker.postMessage('stop');
    closedByServer += (await next()).closedByServer;
    await worker.terminate();
  }

  const latencies = [];
  let supersededCount = 0;
  let missed = 0;
  for (let s = 0; s < subscribers; s += 1) {
    const row = s * (changes + 1);
    for (let seq = 1; seq <= changes; seq += 1) {
      if (!answeredAt[seq]) continue;
      if (!arrivals[row + seq]) {
        missed += 1;
        continue;
      }
      latencies.push(Math.max(0, arrivals[row + seq] - answeredAt[seq]));
      supersededCount += superseded[row + seq];
    }
  }
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;

  // The history: seq 1..N without a gap, each value one more than the last.
  const state = await (await fetch(`${base}/counters/${counter}`)).json();
  let expected = state.seq;
  let before = null;
  let historyExact = true;
  while (historyExact) {
    const page = await (await fetch(`${base}/counters/${counter}/history?limit=100${before ? `&before=${before}` : ''}`)).json();
    for (const item of page.items) {
      const key = `${counter}-${item.seq - 1}`;
      if (item.seq !== expected || item.value !== expected || item.delta !== 1 || item.requestId !== key) {
        console.error(`history not exact at ${JSON.stringify(item)}`);
        historyExact = false;
        break;
      }
      expected -= 1;
    }
    if (page.next === null) break;
    before = page.next;
  }
  const exact = historyExact && expected === 0 && state.value === state.seq && state.seq === changes - failures;

  const figures = {
    client: 'node-ws',
    threads,
    subscribers,
    changes: changes - failures,
    reached: latencies.length,
    superseded: supersededCount,
    missed,
    closedByServer,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: latencies.at(-1) ?? NaN,
    serverRssKib: rssBefore === null ? null : { before: rssBefore, after: rssAfter },
    serverKibPerSubscriber: rssBefore === null ? null : (rssAfter - rssBefore) / subscribers,
    exact,
  };
  const ms = (value) => `${value.toFixed(1)} ms`;
  console.log(
    `${figures.changes} changes x ${subscribers} subscribers: ${figures.reached} reached (${supersededCount} superseded, ${missed} missed)`,
  );
  console.log(`latency from answer to arrival: p50 ${ms(figures.p50Ms)}, p90 ${ms(figures.p90Ms)}, p99 ${ms(figures.p99Ms)}, max ${ms(figures.maxMs)}`);
  if (figures.serverKibPerSubscriber !== null) {
    console.log(`server memory: ${rssBefore} KiB before, ${rssAfter} KiB after: ${figures.serverKibPerSubscriber.toFixed(1)} KiB per subscriber`);
  }
  console.log(exact ? `exact: value = seq = ${state.seq}, history 1..${state.seq} without a gap` : `NOT exact: ${JSON.stringify(state)}`);
  console.log(JSON.stringify(figures));
  process.exit(exact && missed === 0 && failures === 0 && closedByServer === 0 ? 0 : 1);
}
