import type { Generated } from 'kysely';

export const STAFF_ROLES = ['admin', 'viewer', 'external'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

export interface ApiTokenTable {
  id: Generated<number>;
  role: StaffRole;
  token_hash: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}
