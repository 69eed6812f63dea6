/**
 * The metrics port every component reports through: counters, gauges and histograms by name, with
 * a no-op default ({@link nopMetrics}). Core packages depend on this interface only; the node's
 * wiring implements it on `prom-client` and serves it (`shoald --metrics-addr`, docs/OPERATING.md).
 *
 * Names follow Prometheus conventions (https://prometheus.io/docs/practices/naming/): the `shoal_`
 * prefix, base units (`_seconds`, `_bytes`), `_total` for counters. Asking twice for the same name
 * returns the same metric (components come and go with leadership and role changes; their counts
 * carry on), so a name must always be asked for with the same kind and label names.
 */

/** Label values by label name. Keep values few (methods, states, tables), never IDs of unbounded sets. */
export type Labels = Readonly<Record<string, string | number>>;

/** A monotonically increasing count (`…_total`). */
export interface Counter {
  /** Adds `by` (default 1, must be ≥ 0). */
  inc(labels?: Labels, by?: number): void;
}

/** A value that goes up and down, or a current state (`…_bytes`, an index, a count of things). */
export interface Gauge {
  set(value: number, labels?: Labels): void;
  inc(labels?: Labels, by?: number): void;
  /** Forgets every labelled value (before setting a fresh set at collect time). */
  reset(): void;
}

/** A distribution of observations, e.g. durations in seconds (`…_seconds`). */
export interface Histogram {
  /** Records one observation (seconds for durations). */
  observe(value: number, labels?: Labels): void;
}

export interface MetricDef {
  name: string;
  help: string;
  /** Label names used with this metric (every call passes exactly these). */
  labelNames?: readonly string[];
}

export interface HistogramDef extends MetricDef {
  /** Upper bounds of the buckets (default {@link LATENCY_BUCKETS}). */
  buckets?: readonly number[];
}

export interface Metrics {
  counter(def: MetricDef): Counter;
  gauge(def: MetricDef): Gauge;
  histogram(def: HistogramDef): Histogram;
  /**
   * Registers `fn`, called before every scrape: it sets gauges that are cheaper to read on demand
   * (a Raft index, objects per table) than to keep current. Returns a function that unregisters it;
   * call it when the component stops, after which its gauges should be reset.
   */
  onCollect(fn: () => void): () => void;
}

/**
 * Seconds: 1 ms … 10 s, for RPCs, Raft proposals, fsyncs, scheduler passes and dataplane syncs
 * (prom-client's default buckets start at 5 ms, too coarse for a local fsync).
 */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Seconds: 10 ms … 5 min, for task start-up (image pull, container create and start, health checks). */
export const TASK_START_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

const nopCounter: Counter = { inc() {} };
const nopGauge: Gauge = { set() {}, inc() {}, reset() {} };
const nopHistogram: Histogram = { observe() {} };

/** Metrics that go nowhere: the default of every component. */
export const nopMetrics: Metrics = {
  counter: () => nopCounter,
  gauge: () => nopGauge,
  histogram: () => nopHistogram,
  onCollect: () => () => {},
};

/** Seconds elapsed since `startMs` (a `performance.now()` or clock reading in ms). */
export function secondsSince(startMs: number, nowMs: number): number {
  return Math.max(0, nowMs - startMs) / 1000;
}
