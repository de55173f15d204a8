import type { Generated } from 'kysely';

import type { Status } from '../status/status.js';

/** Times are epoch milliseconds (BIGINT), the same on every dialect. */
export interface DeviceTable {
  id: Generated<number>;
  name: string;
  token_hash: string;
  status: Status;
  previous_status: Status | null;
  last_status_change_at: number | null;
  status_change_reason: string | null;
  last_heartbeat_at: number | null;
  /** When the monitor must next evaluate this device; null when only a heartbeat can change it. */
  next_check_at: number | null;
  heartbeat_interval_seconds: number;
  heartbeat_timeout_seconds: number;
  grace_period_seconds: number;
  /** 0/1 on SQLite and MySQL, boolean on PostgreSQL: read it through `toBoolean`. */
  remote_control_enabled: boolean | number;
  battery_level: number | null;
  wifi_strength: number | null;
  app_version: string | null;
  uptime_seconds: number | null;
  /** A reconnect signal waiting for the next heartbeat; null when none. */
  reconnect_delay_seconds: number | null;
  reconnect_requested_at: number | null;
  reconnect_delivered_at: number | null;
  created_at: number;
  updated_at: number;
}
