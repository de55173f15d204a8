/**
 * A small round-robin HTTP load balancer for tests, doing what
 * deploy/nginx.conf does: skip an upstream whose /readyz fails, and pass a
 * request to the next upstream when one refuses the connection, resets it
 * before answering, or answers 502/503 (nginx: `proxy_next_upstream error
 * timeout http_502 http_503 non_idempotent` on the heartbeat route).
 */
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Upstream {
  readonly port: number;
  up: boolean;
}

export interface Proxy {
  readonly port: number;
  readonly upstreams: readonly Upstream[];
  /** Requests passed to another upstream after a failure. */
  readonly retried: { count: number };
  close(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

function forward(agent: Agent, port: number, method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) outgoing[name] = value;
    outgoing['content-length'] = String(body.length);
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: outgoing, agent, timeout: 5000 }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('upstream timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function probe(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(500), headers: { connection: 'close' } });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

export async function startProxy(ports: readonly number[], { probeIntervalMs = 200 } = {}): Promise<Proxy> {
  const upstreams: Upstream[] = ports.map((port) => ({ port, up: true }));
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const retried = { count: 0 };
  let next = 0;
  let closed = false;

  const prober = (async () => {
    while (!closed) {
      await Promise.all(upstreams.map(async (u) => void (u.up = await probe(u.port))));
      await sleep(probeIntervalMs);
    }
  })();

  /** Up to two passes over the upstreams, a short pause between, before giving up with 502. */
  async function pass(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer> {
    let last: Answer | null = null;
    for (let round = 0; round < 2; round++) {
      const order = upstreams.map((_, i) => upstreams[(next + i) % upstreams.length]!);
      next = (next + 1) % upstreams.length;
      for (const upstream of [...order.filter((u) => u.up), ...order.filter((u) => !u.up)]) {
        try {
          const answer = await forward(agent, upstream.port, method, path, headers, body);
          if (answer.status !== 502 && answer.status !== 503) return answer;
          last = answer;
        } catch {
          // refused, reset before an answer, or timed out: try the next one
        }
        upstream.up = false;
        retried.count++;
      }
      await sleep(100);
    }
    return last ?? { status: 502, headers: { 'content-type': 'text/plain' }, body: Buffer.from('no upstream answered') };
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void pass(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks)).then((answer) => {
        const headers: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
        headers['content-length'] = String(answer.body.length);
        res.writeHead(answer.status, headers).end(answer.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    port,
    upstreams,
    retried,
    async close() {
      closed = true;
      await prober;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
