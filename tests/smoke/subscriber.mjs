// One WebSocket subscriber for the smoke test: subscribes to a counter, asks for its value, and prints the `seq` of
// every value message it receives, one per line, until it is killed (or after ten minutes).
// Usage: node tests/smoke/subscriber.mjs WEBSOCKET_URL COUNTER
const [url, counter] = process.argv.slice(2);
if (!url || !counter) {
  console.error('usage: node tests/smoke/subscriber.mjs WEBSOCKET_URL COUNTER');
  process.exit(2);
}
const address = new URL(url);
address.searchParams.set('counter', counter);
const socket = new WebSocket(address);
socket.addEventListener('open', () => {
  socket.send(JSON.stringify({ action: 'sync' }));
  setInterval(() => socket.send(JSON.stringify({ action: 'ping' })), 20_000);
});
socket.addEventListener('message', (event) => {
  const message = JSON.parse(String(event.data));
  if (message.type === 'value' && message.counter === counter) console.log(message.seq);
});
socket.addEventListener('close', (event) => {
  console.error(`the subscription closed (${event.code})`);
  process.exit(1);
});
setTimeout(() => process.exit(0), 600_000);
