import type { Config } from '../config.js';
import { generateToken, hashToken } from '../auth/tokens.js';
import { openDatabase } from '../db/database.js';
import { deleteDevice, insertDevices } from '../devices/device.repository.js';
import { inTransaction } from '../db/transaction.js';
import type { Outcome } from './backup.js';

export interface SmokeResult {
  readonly deviceId: number;
  readonly status: string;
  readonly ms: number;
}

const SMOKE_TIMEOUT_MS = 5000;

/**
 * End to end through the load balancer: registers a throwaway device straight
 * in the database, sends it one heartbeat over HTTP at `baseUrl`, expects 200
 * and "connected", then removes the device (its transition stays in the feed).
 */
export async function heartbeatSmoke(config: Config, baseUrl: string, now = Date.now()): Promise<Outcome<SmokeResult>> {
  const database = openDatabase(config.database, { poolSize: 1, onPoolError: () => {} });
  let deviceId: number | null = null;
  try {
    const token = generateToken();
    const [device] = await inTransaction(database, (trx) =>
      insertDevices(
        trx,
        database.caps,
        [
          {
            name: `fleetpulse-smoke-${new Date(now).toISOString()}`,
            token_hash: hashToken(token),
            heartbeat_interval_seconds: config.defaults.heartbeatIntervalSeconds,
            heartbeat_timeout_seconds: config.defaults.heartbeatTimeoutSeconds,
            grace_period_seconds: config.defaults.gracePeriodSeconds,
            remote_control_enabled: false,
          },
        ],
        now,
      ),
    );
    deviceId = device!.id;
    const started = performance.now();
    const url = new URL('/api/devices/heartbeat', baseUrl);
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ app_version: 'fleetpulse-smoke' }),
        signal: AbortSignal.timeout(SMOKE_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return { ok: false, error: `heartbeat to ${url.origin} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}` };
    }
    const ms = performance.now() - started;
    const text = await response.text();
    if (response.status !== 200) return { ok: false, error: `heartbeat to ${url.origin} answered ${response.status}: ${text.slice(0, 200)}` };
    const status = (JSON.parse(text) as { data?: { status?: string } }).data?.status ?? '';
    if (status !== 'connected') return { ok: false, error: `heartbeat answered 200 but status "${status}", expected "connected"` };
    return { ok: true, deviceId, status, ms };
  } catch (error) {
    return { ok: false, error: `smoke test failed: ${(error as Error).message.split('\n')[0]}` };
  } finally {
    if (deviceId !== null) await deleteDevice(database.db, deviceId).catch(() => {});
    await database.close();
  }
}
