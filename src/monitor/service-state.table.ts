/** A single row (id = 1): the service's own availability, for downtime awareness. */
export interface ServiceStateTable {
  id: number;
  alive_at: number;
  available_since: number;
}

/** Named leases: one holder at a time, for as long as it keeps renewing. */
export interface LeaseTable {
  name: string;
  holder: string | null;
  expires_at: number;
}
