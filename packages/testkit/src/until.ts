/**
 * Polls `cond` every 10 ms of *wall* time until it returns a truthy value (resolved with it) or
 * `timeoutMs` passes (rejects naming `what`). For tests whose subject does real I/O (containers,
 * sockets, child processes); a component on an injected clock is better driven by a
 * {@link FakeClock} and its `idle()`.
 */
export async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
