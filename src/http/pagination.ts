import { errors } from '../errors.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;

/** Query-string schema fragments: values arrive as strings and are checked here, not coerced. */
export const limitSchema = { type: 'string', pattern: '^[0-9]{1,7}$' } as const;
export const cursorSchema = { type: 'string', maxLength: 64 } as const;

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw errors.invalidRequest(`limit must be an integer between 1 and ${MAX_LIMIT}`);
  }
  return limit;
}

/** Cursors are opaque to clients: an id in base64url. */
export function encodeCursor(id: number): string {
  return Buffer.from(`i${id}`).toString('base64url');
}

export function decodeCursor(raw: string | undefined, field = 'cursor'): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const text = Buffer.from(raw, 'base64url').toString();
  const id = /^i\d{1,16}$/.test(text) ? Number(text.slice(1)) : NaN;
  if (!Number.isSafeInteger(id)) throw errors.invalidRequest(`${field} is not a cursor this server issued`);
  return id;
}

export function page<T>(items: T[], limit: number, cursorOf: (item: T) => number) {
  return { items, next_cursor: items.length === limit ? encodeCursor(cursorOf(items.at(-1)!)) : null };
}

/** A path id: anything that is not a positive integer names no device. */
export function parseId(raw: string, notFound: (raw: string) => Error): number {
  const id = /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(id)) throw notFound(raw);
  return id;
}
