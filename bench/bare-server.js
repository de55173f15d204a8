// The baseline for the ingest ratio: a bare node:http server that does the
// least a heartbeat endpoint can do (read the body, JSON-parse it, answer the
// same JSON shape as fleetpulse) and nothing else.
//
// Usage: node bench/bare-server.js <port> [host]   (prints "listening <port>")
// Forked by the harness with an IPC channel; it exits when the harness goes away.
import { Buffer } from 'node:buffer';
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const host = process.argv[3] ?? '127.0.0.1';

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} payload
 */
function reply(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/devices/heartbeat') {
    reply(res, 404, { success: false, error: { code: 'not_found', message: 'Not found' } });
    return;
  }
  /** @type {Buffer[]} */
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      reply(res, 400, { success: false, error: { code: 'invalid_request', message: 'body is not JSON' } });
      return;
    }
    reply(res, 200, {
      success: true,
      data: {
        status: 'connected',
        remote_control_enabled: true,
        should_reconnect: false,
        reconnect_delay_seconds: null,
        heartbeat_interval_seconds: 15,
        server_time: new Date().toISOString(),
      },
    });
  });
});

server.listen(port, host, () => {
  const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address());
  console.log(`listening ${actual}`);
  process.send?.({ listening: actual });
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', () => process.exit(0));
