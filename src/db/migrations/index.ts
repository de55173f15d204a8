import type { Migration } from 'kysely';

import * as m0001 from './20261204_0001_create_devices.js';
import * as m0002 from './20261204_0002_create_device_transitions.js';
import * as m0003 from './20261204_0003_create_api_tokens.js';
import * as m0004 from './20261204_0004_create_service_state.js';

/** Every migration, by name. Names sort in the order they run; shipped ones are never edited. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '20261204_0001_create_devices': m0001,
  '20261204_0002_create_device_transitions': m0002,
  '20261204_0003_create_api_tokens': m0003,
  '20261204_0004_create_service_state': m0004,
};
