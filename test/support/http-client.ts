/**
 * A small JSON client for load against real server processes: keep-alive
 * sockets, a hard timeout per request, and failures as values (a refused
 * connection is `{status: 0, error}`, never a throw), so load loops can count them.
 */
import { Agent, request as httpRequest } from 'node:http';

export interface JsonResponse {
  /** HTTP status; 0 when no response arrived (refused, reset, timed out). */
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  /** The network error's code when status is 0. */
  readonly error?: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly token?: string;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

export class HttpClient {
  private readonly agent: Agent;

  constructor({ maxSockets = 64 }: { maxSockets?: number } = {}) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, keepAliveMsecs: 1000 });
  }

  request(url: string, { method = 'GET', token, body, timeoutMs = 5000 }: RequestOptions = {}): Promise<JsonResponse> {
    const target = new URL(url);
    if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') {
      return Promise.reject(new Error(`test traffic goes to 127.0.0.1 only, not ${target.hostname}`));
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve) => {
      let settled = false;
      const done = (response: JsonResponse) => {
        if (settled) return;
        settled = true;
        resolve(response);
      };
      const req = httpRequest(
        target,
        {
          method,
          agent: this.agent,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: null, error: error.code ?? error.message }));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // not JSON (e.g. /metrics): keep the text
            }
            done({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (error: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: null, error: error.code ?? error.message }));
      req.end(payload);
    });
  }

  /** `request` that throws unless the status is `expected`, returning the body's `data`. */
  async expect<T = unknown>(expected: number, url: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(url, options);
    if (response.status !== expected) {
      throw new Error(`${options.method ?? 'GET'} ${url}: expected ${expected}, got ${response.status} ${response.error ?? JSON.stringify(response.body)}`);
    }
    return (response.body as { data: T }).data;
  }

  /** Closes every kept-alive socket. */
  close(): void {
    this.agent.destroy();
  }
}
