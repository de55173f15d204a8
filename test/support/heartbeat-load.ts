/**
 * Device heartbeats against real server processes: one loop per device, one
 * request at a time (unless told to duplicate some), each to a random target,
 * every answer recorded. Bounded: a loop ends at `stop()` or at its hard
 * deadline, whichever comes first.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import type { HttpClient } from './http-client.js';

export interface LoadDevice {
  readonly id: number;
  readonly token: string;
}

export interface HeartbeatRecord {
  readonly deviceId: number;
  readonly target: string;
  /** Wall-clock ms when the request was sent and when its answer (or failure) came. */
  readonly sentAt: number;
  readonly doneAt: number;
  /** 0 when no HTTP answer arrived. */
  readonly status: number;
  /** The error code from the body, or the network error. */
  readonly code?: string;
  readonly retryAfter?: string;
  /** For a 200: the server_time it was accepted at (epoch ms). */
  readonly serverTime?: number;
}

export interface LoadTarget {
  readonly name: string;
  readonly url: string;
  readonly running: boolean;
}

export interface HeartbeatLoadOptions {
  readonly client: HttpClient;
  readonly devices: readonly LoadDevice[];
  /** Where to send; read before each request, so targets can come and go. Only running ones are used. */
  readonly targets: () => readonly LoadTarget[];
  /** The wait after each answer. */
  readonly pauseMs: (device: LoadDevice) => number;
  /** Loops end by then at the latest (epoch ms). */
  readonly deadline: number;
  /** Spread the first requests over this many ms. */
  readonly rampMs?: number;
  /**
   * How often (0–1) a device sends the same heartbeat twice at once, to two
   * targets, as firmware retrying an answer it thinks was lost would.
   */
  readonly duplicateRate?: number;
  readonly timeoutMs?: number;
}

export interface HeartbeatLoad {
  readonly records: HeartbeatRecord[];
  /** Ends every loop after its current request and waits for them. */
  stop(): Promise<void>;
  /** Resolves when every loop has ended (deadline or stop). */
  readonly done: Promise<void>;
}

export function startHeartbeatLoad(options: HeartbeatLoadOptions): HeartbeatLoad {
  const records: HeartbeatRecord[] = [];
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every loop's sleep listens to it
  const wait = (ms: number) => sleep(Math.max(0, Math.min(ms, options.deadline - Date.now())), undefined, { signal: abort.signal }).catch(() => {});
  const running = () => !abort.signal.aborted && Date.now() < options.deadline;

  const send = async (device: LoadDevice, target: LoadTarget) => {
    const sentAt = Date.now();
    const response = await options.client.request(`${target.url}/api/devices/heartbeat`, {
      method: 'POST',
      token: device.token,
      body: { battery_level: Math.floor(Math.random() * 101), uptime_seconds: records.length },
      timeoutMs: options.timeoutMs ?? 5000,
    });
    const body = response.body as { data?: { server_time?: string }; error?: { code?: string } } | null;
    const retryAfter = response.headers['retry-after'];
    records.push({
      deviceId: device.id,
      target: target.name,
      sentAt,
      doneAt: Date.now(),
      status: response.status,
      code: response.status === 0 ? response.error : body?.error?.code,
      ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      ...(response.status === 200 && body?.data?.server_time ? { serverTime: Date.parse(body.data.server_time) } : {}),
    });
  };

  const loop = async (device: LoadDevice) => {
    await wait(Math.random() * (options.rampMs ?? 0));
    while (running()) {
      const targets = options.targets().filter((t) => t.running);
      if (targets.length === 0) {
        await wait(50);
        continue;
      }
      const first = Math.floor(Math.random() * targets.length);
      const twice = targets.length > 1 && Math.random() < (options.duplicateRate ?? 0);
      const chosen = twice ? [targets[first]!, targets[(first + 1) % targets.length]!] : [targets[first]!];
      await Promise.all(chosen.map((target) => send(device, target)));
      await wait(options.pauseMs(device));
    }
  };

  const done = Promise.all(options.devices.map(loop)).then(() => undefined);
  return {
    records,
    done,
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** Counts records by status (network failures as `network:<code>`). */
export function statusCounts(records: readonly HeartbeatRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    const key = r.status === 0 ? `network:${r.code}` : String(r.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
