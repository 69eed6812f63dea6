import { customAlphabet } from 'nanoid';

/**
 * Object IDs: 25 lowercase base36 characters, the same shape as SwarmKit's `identity.NewID()`
 * (so tables truncated to 12 characters look like Docker's).
 */
export const newId: () => string = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 25);

/** First 12 characters, as the Docker CLI shows IDs in tables. */
export const truncId = (id: string): string => id.slice(0, 12);
