// The load generator, in its own process so it never shares an event loop
// with the server it measures. Forked by the harness (bench/lib/loadgen-client.js);
// speaks over the IPC channel:
//
//   → { id, type: 'tokens', tokens: string[] }          device tokens to rotate over
//   → { id, type: 'run', url, connections, duration, amount? }   amount: stop after that many requests
//   ← { id, ok: true, result } | { id, ok: false, error }
//
// Every request is a heartbeat POST with the next token of one global rotation
// (shared by all connections), so with N tokens each device is hit exactly once
// per N requests, and each run continues the rotation where the last one ended.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';

/**
 * A few realistic bodies, so the server does not see the same values over and
 * over; each is prebuilt with the blank line that ends the request head.
 */
const BODIES = Array.from({ length: 64 }, (_, i) => {
  const json = JSON.stringify({
    battery_level: 20 + ((i * 37) % 81),
    wifi_strength: -30 - ((i * 13) % 60),
    app_version: i % 8 === 0 ? '3.2.0' : '3.2.1',
    uptime_seconds: 3_600 + i * 977,
  });
  return Buffer.from(`Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
});

/** @type {string[]} */
let tokens = [];
let sent = 0;

/**
 * The request bytes for each token, up to and excluding Content-Length.
 * Prebuilt because autocannon's own per-request hook (`setupRequest`) rebuilds
 * the whole request every time, which costs the generator ~20% of its throughput
 * and so would flatter any server measured against the bare baseline.
 * @param {string} url
 */
function requestHeads(url) {
  const { host } = new URL(url);
  return tokens.map((token) =>
    Buffer.from(
      `POST /api/devices/heartbeat HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n` +
        `Content-Type: application/json\r\nAuthorization: Bearer ${token}\r\n`,
    ),
  );
}

/**
 * Runs for `duration` seconds, then stops sending and waits for the requests in
 * flight (autocannon's own duration mode drops them, and the server may count
 * them): every request sent is answered, so the server's counter must match.
 * @param {{ url: string, connections: number, duration: number, amount?: number }} spec
 */
function run({ url, connections, duration, amount }) {
  if (tokens.length === 0) throw new Error('no tokens: send a "tokens" message first');
  const heads = requestHeads(url);
  // One rotation shared by all connections: request k carries token k mod N.
  // Each connection ends after the response it is waiting for.
  const endAll = () => {
    for (const client of clients) client.responseMax = client.reqsMade;
  };
  const nextRequest = () => {
    const k = sent++;
    if (amount !== undefined && sent - sentBefore >= amount) endAll();
    return Buffer.concat([/** @type {Buffer} */ (heads[k % heads.length]), /** @type {Buffer} */ (BODIES[k % BODIES.length])]);
  };
  /** @type {any[]} */
  const clients = [];
  const sentBefore = sent;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let lastResponse = started;
    let responses = 0;
    let drained = true;
    const instance = autocannon(
      {
        url,
        connections,
        amount: Number.MAX_SAFE_INTEGER, // ended by `finish` below, not by autocannon
        method: 'POST',
        timeout: 10,
        // autocannon 8 internals: each Client writes getRequestBuffer() and
        // destroys itself once reqsMade reaches responseMax.
        setupClient(/** @type {any} */ client) {
          if (typeof client.getRequestBuffer !== 'function' || typeof client.reqsMade !== 'number') {
            throw new Error('autocannon internals changed (Client#getRequestBuffer, reqsMade)');
          }
          client.getRequestBuffer = nextRequest;
          clients.push(client);
        },
      },
      (/** @type {Error | null} */ err, /** @type {any} */ result) => {
        clearTimeout(finish);
        clearTimeout(guard);
        if (err) return reject(err);
        const elapsedSeconds = (lastResponse - started) / 1000;
        resolve({
          responses,
          sent: sent - sentBefore,
          ok2xx: result['2xx'],
          non2xx: result.non2xx,
          statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
          errors: result.errors,
          timeouts: result.timeouts,
          elapsedSeconds,
          requestsPerSecond: elapsedSeconds > 0 ? responses / elapsedSeconds : 0,
          latencyMs: {
            mean: result.latency.mean,
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
          },
          drained,
        });
      },
    );
    instance.on('response', () => {
      responses++;
      lastResponse = performance.now();
    });
    const finish = setTimeout(endAll, duration * 1000);
    // A server that stops answering must not hang the run: cut it off.
    const guard = setTimeout(() => {
      drained = false;
      instance.stop();
    }, (duration + 15) * 1000);
  });
}

process.on('message', async (/** @type {any} */ msg) => {
  try {
    if (msg.type === 'tokens') {
      tokens = msg.tokens;
      process.send?.({ id: msg.id, ok: true, result: { tokens: tokens.length } });
    } else if (msg.type === 'run') {
      process.send?.({ id: msg.id, ok: true, result: await run(msg) });
    } else {
      throw new Error(`unknown message type ${msg.type}`);
    }
  } catch (err) {
    process.send?.({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
