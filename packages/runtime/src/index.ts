/**
 * `@shoal/runtime`: what every Shoal component runs on — the one {@link Clock}, the one
 * {@link Logger} and the one {@link ReconcileLoop}. A leaf: it imports no other `@shoal` package,
 * and every tier may import it (except the pure Raft core, which imports nothing).
 */
export { type Clock, type TimerHandle, systemClock, isoNow, sleep, withTimeout } from './clock.js';
export { type Logger, type LogFields, nopLogger, childLogger, errMessage } from './logger.js';
export { ReconcileLoop, type ReconcileLoopOptions } from './loop.js';
