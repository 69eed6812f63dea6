/**
 * `@shoal/runtime`: what every Shoal component runs on — the one {@link Clock}, the one
 * {@link Logger}, the one {@link ReconcileLoop} and the {@link Metrics} port. A leaf: it imports no other `@shoal` package,
 * and every tier may import it (except the pure Raft core, which imports nothing).
 */
export { type Clock, type TimerHandle, systemClock, isoNow, sleep, withTimeout } from './clock.js';
export { type Logger, type LogFields, nopLogger, childLogger, errMessage } from './logger.js';
export { ReconcileLoop, type ReconcileLoopOptions, passDurationHistogram } from './loop.js';
export {
  type Metrics, type Counter, type Gauge, type Histogram, type Labels, type MetricDef, type HistogramDef,
  nopMetrics, secondsSince, LATENCY_BUCKETS, TASK_START_BUCKETS,
} from './metrics.js';
