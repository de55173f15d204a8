import type { Kysely } from 'kysely';

import type { Schema } from '../../src/db/schema.js';

/**
 * Asserts the history invariant of CONTRACT.md §2 for every device: a chain
 * from never_connected, no transition to the same status, the last to_status
 * equal to the current status. Returns the problems found (empty when sound).
 */
export async function chainProblems(db: Kysely<Schema>): Promise<string[]> {
  const devices = await db.selectFrom('devices').select(['id', 'status']).execute();
  const transitions = await db
    .selectFrom('device_transitions')
    .select(['id', 'device_id', 'from_status', 'to_status'])
    .orderBy('id')
    .execute();
  const byDevice = new Map<number, typeof transitions>();
  for (const t of transitions) byDevice.set(Number(t.device_id), [...(byDevice.get(Number(t.device_id)) ?? []), t]);
  const problems: string[] = [];
  for (const device of devices) {
    let current = 'never_connected';
    for (const t of byDevice.get(Number(device.id)) ?? []) {
      if (t.from_status !== current) problems.push(`device ${device.id}: transition ${t.id} from ${t.from_status}, but status was ${current}`);
      if (t.from_status === t.to_status) problems.push(`device ${device.id}: transition ${t.id} from ${t.from_status} to itself`);
      current = t.to_status;
    }
    if (current !== device.status) problems.push(`device ${device.id}: status ${device.status}, but history ends at ${current}`);
  }
  return problems;
}
