import type { ApiTokenTable } from '../auth/api-token.table.js';
import type { DeviceTable } from '../devices/device.table.js';
import type { LeaseTable, ServiceStateTable } from '../monitor/service-state.table.js';
import type { FeedLockTable, TransitionTable } from '../transitions/transition.table.js';

export interface Schema {
  devices: DeviceTable;
  device_transitions: TransitionTable;
  feed_lock: FeedLockTable;
  api_tokens: ApiTokenTable;
  service_state: ServiceStateTable;
  leases: LeaseTable;
}
