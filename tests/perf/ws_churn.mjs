// The soak's WebSocket churn: keeps SIZE subscribers of the soak's counters open, closing a few and opening new
// ones every 200 ms; each asks for its value (sync) or pings now and then, and some send junk (which must be
// answered with an error message, the session staying open). Checks that every subscriber's `seq`s only go up and
// that the server never closes a session on its own; prints a summary as JSON and exits non-zero on a failure.
// Usage: node tests/perf/ws_churn.mjs WEBSOCKET_URL SECONDS [SIZE]
const [url, secondsArg, sizeArg] = process.argv.slice(2);
if (!url || !secondsArg) {
  console.error('usage: node tests/perf/ws_churn.mjs WEBSOCKET_URL SECONDS [SIZE]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const size = Number(sizeArg ?? 200);
const counters = 8;
const stats = { opened: 0, closedByUs: 0, closedByServer: 0, values: 0, pongs: 0, junkRefused: 0, failures: [] };
const open = new Set();

function fail(what) {
  if (stats.failures.length < 20) stats.failures.push(what);
}

function connect() {
  const counter = `soak-${Math.floor(Math.random() * counters)}`;
  const address = new URL(url);
  address.searchParams.set('counter', counter);
  const socket = new WebSocket(address);
  const session = { socket, counter, lastSeq: 0, junkSent: 0, closing: false };
  socket.addEventListener('open', () => {
    stats.opened += 1;
    open.add(session);
    socket.send(JSON.stringify({ action: 'sync' }));
  });
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data));
    if (message.type === 'value') {
      stats.values += 1;
      if (message.counter !== counter) fail(`a value of ${message.counter} on a subscription of ${counter}`);
      if (message.seq < session.lastSeq) fail(`seq ${message.seq} after ${session.lastSeq} on ${counter}`);
      session.lastSeq = Math.max(session.lastSeq, message.seq);
    } else if (message.type === 'pong') {
      stats.pongs += 1;
    } else if (message.type === 'error') {
      if (session.junkSent > 0) {
        session.junkSent -= 1;
        stats.junkRefused += 1;
      } else {
        fail(`an error for a valid message: ${message.detail}`);
      }
    }
  });
  socket.addEventListener('close', (event) => {
    open.delete(session);
    if (session.closing) {
      stats.closedByUs += 1;
    } else {
      stats.closedByServer += 1;
      fail(`the server closed a session (${event.code} ${event.reason})`);
    }
  });
  socket.addEventListener('error', () => {});
}

for (let n = 0; n < size; n += 1) connect();

const churn = setInterval(() => {
  const sessions = [...open];
  for (let n = 0; n < 5 && sessions.length > 0; n += 1) {
    const session = sessions.splice(Math.floor(Math.random() * sessions.length), 1)[0];
    session.closing = true;
    session.socket.close(1000);
    connect();
  }
}, 200);

const chatter = setInterval(() => {
  for (const session of open) {
    const roll = Math.random();
    if (roll < 0.02) {
      session.junkSent += 1;
      session.socket.send(roll < 0.01 ? 'not json' : JSON.stringify({ action: 'dance' }));
    } else if (roll < 0.3) {
      session.socket.send(JSON.stringify({ action: roll < 0.15 ? 'sync' : 'ping' }));
    }
  }
}, 1000);

setTimeout(() => {
  clearInterval(churn);
  clearInterval(chatter);
  for (const session of open) {
    session.closing = true;
    session.socket.close(1000);
  }
  setTimeout(() => {
    console.log(JSON.stringify(stats));
    process.exit(stats.failures.length === 0 && stats.opened > 0 ? 0 : 1);
  }, 2000);
}, seconds * 1000);
