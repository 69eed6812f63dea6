import { customAlphabet } from 'nanoid';

const randomId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 25);
let source: (() => string) | undefined;

/**
 * Object IDs: 25 lowercase base36 characters, the same shape as SwarmKit's `identity.NewID()`
 * (so tables truncated to 12 characters look like Docker's). Random (nanoid), unless a test
 * installed a deterministic source with {@link setIdSource}.
 */
export function newId(): string {
  return source ? source() : randomId();
}

/**
 * Tests only: makes {@link newId} return what `fn` gives (the in-process cluster harness installs a
 * seeded generator, so a scenario run twice makes the same IDs and hence the same choices wherever
 * IDs break ties); `undefined` restores random IDs. Process-wide: only one harness may run at a time.
 */
export function setIdSource(fn: (() => string) | undefined): void {
  source = fn;
}

/** First 12 characters, as the Docker CLI shows IDs in tables. */
export const truncId = (id: string): string => id.slice(0, 12);
