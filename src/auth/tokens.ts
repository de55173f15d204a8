import { createHash, randomBytes } from 'node:crypto';

/** 256 random bits, URL-safe: 43 characters of [A-Za-z0-9_-]. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Tokens are high-entropy, so a fast hash is enough; only the hash is stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What a well-formed bearer token looks like; anything else is refused without a lookup. */
export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{16,512}$/;
