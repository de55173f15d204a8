import { timingSafeEqual } from 'node:crypto';

import { LRUCache } from 'lru-cache';

import type { Database } from '../db/database.js';
import { findDeviceByTokenHash } from '../devices/device.repository.js';
import { findApiTokenRole } from './api-token.repository.js';
import type { StaffRole } from './api-token.table.js';
import { hashToken, TOKEN_SHAPE } from './tokens.js';

export type Role = 'device' | StaffRole;

export type Principal =
  | { readonly role: 'device'; readonly deviceId: number; readonly tokenHash: string }
  | { readonly role: StaffRole };

export interface AuthenticatorOptions {
  readonly database: Database;
  readonly adminToken: string | null;
  /** Most device tokens kept in memory. */
  readonly cacheSize?: number;
  /** How long a staff token's role is trusted without asking the database. */
  readonly staffTtlMs?: number;
}

/**
 * Resolves bearer tokens to principals, caching per token hash. A device's
 * entries are invalidated on their own: nothing ever flushes the whole cache.
 */
export class Authenticator {
  private readonly devices: LRUCache<string, number>;
  private readonly hashByDevice = new Map<number, string>();
  private readonly staff: LRUCache<string, StaffRole>;
  private readonly adminToken: Buffer | null;

  constructor(private readonly options: AuthenticatorOptions) {
    this.devices = new LRUCache<string, number>({
      max: options.cacheSize ?? 100_000,
      dispose: (deviceId, hash) => {
        if (this.hashByDevice.get(deviceId) === hash) this.hashByDevice.delete(deviceId);
      },
    });
    this.staff = new LRUCache<string, StaffRole>({ max: 1000, ttl: options.staffTtlMs ?? 1000 });
    this.adminToken = options.adminToken ? Buffer.from(options.adminToken) : null;
  }

  /** The principal for a bearer token, or null when the token is unknown. */
  async authenticate(token: string): Promise<Principal | null> {
    if (this.adminToken && this.isAdminToken(token)) return { role: 'admin' };
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = hashToken(token);
    const cachedDevice = this.devices.get(hash);
    if (cachedDevice !== undefined) return { role: 'device', deviceId: cachedDevice, tokenHash: hash };
    const cachedRole = this.staff.get(hash);
    if (cachedRole !== undefined) return { role: cachedRole };

    const { db } = this.options.database;
    const device = await findDeviceByTokenHash(db, hash);
    if (device) {
      this.remember(device.id, hash);
      return { role: 'device', deviceId: device.id, tokenHash: hash };
    }
    const role = await findApiTokenRole(db, hash);
    if (role) {
      this.staff.set(hash, role);
      return { role };
    }
    return null;
  }

  /** True when the token is a cached, known-good device token (no lookup needed). */
  isKnownDeviceToken(token: string): boolean {
    return TOKEN_SHAPE.test(token) && this.devices.has(hashToken(token));
  }

  /** Forgets one device's token; other devices' entries are untouched. */
  invalidateDevice(deviceId: number): void {
    const hash = this.hashByDevice.get(deviceId);
    if (hash !== undefined) this.devices.delete(hash);
    this.hashByDevice.delete(deviceId);
  }

  /** For tests and metrics: is this device's token cached? */
  hasCachedDevice(deviceId: number): boolean {
    return this.hashByDevice.has(deviceId);
  }

  get cachedDeviceCount(): number {
    return this.devices.size;
  }

  private remember(deviceId: number, hash: string): void {
    const previous = this.hashByDevice.get(deviceId);
    if (previous !== undefined && previous !== hash) this.devices.delete(previous);
    this.devices.set(hash, deviceId);
    this.hashByDevice.set(deviceId, hash);
  }

  private isAdminToken(token: string): boolean {
    const given = Buffer.from(token);
    return given.length === this.adminToken!.length && timingSafeEqual(given, this.adminToken!);
  }
}
