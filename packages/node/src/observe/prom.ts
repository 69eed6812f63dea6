/**
 * The `@shoal/runtime` metrics port on prom-client: one registry per node (several in-process
 * nodes in a test each keep their own), Node.js process metrics (`process_*`, `nodejs_*`), and the
 * collect hooks components register for values read at scrape time.
 */
import client from 'prom-client';
import type { Counter, Gauge, Histogram, HistogramDef, Labels, MetricDef, Metrics } from '@shoal/runtime';
import { LATENCY_BUCKETS } from '@shoal/runtime';

type Kind = 'counter' | 'gauge' | 'histogram';
type Prom = client.Counter<string> | client.Gauge<string> | client.Histogram<string>;

/** prom-client label values are strings or numbers; a mutable copy keeps its types happy. */
const plain = (l: Labels | undefined): Record<string, string | number> => ({ ...(l ?? {}) });

export class PromMetrics implements Metrics {
  readonly registry = new client.Registry();
  private readonly metrics = new Map<string, { kind: Kind; labels: string; metric: Prom; facade: Counter | Gauge | Histogram }>();
  private readonly hooks = new Set<() => void>();

  /**
   * @param o.processMetrics register prom-client's default process and Node.js metrics (default true).
   * @param o.onHookError a collect hook threw (the scrape goes on without its values).
   */
  constructor(private readonly o: { processMetrics?: boolean; onHookError?: (err: unknown) => void } = {}) {
    if (o.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
  }

  /** The Content-Type of {@link render}'s text (Prometheus text exposition format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Runs the collect hooks, then renders every metric in the Prometheus text format. */
  async render(): Promise<string> {
    for (const fn of [...this.hooks]) {
      try {
        fn();
      } catch (e) {
        this.o.onHookError?.(e);
      }
    }
    return this.registry.metrics();
  }

  counter(def: MetricDef): Counter {
    return this.get('counter', def, () => {
      const c = new client.Counter({ name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], registers: [this.registry] });
      const facade: Counter = { inc: (labels, by = 1) => c.inc(plain(labels), by) };
      return { metric: c, facade };
    }) as Counter;
  }

  gauge(def: MetricDef): Gauge {
    return this.get('gauge', def, () => {
      const g = new client.Gauge({ name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], registers: [this.registry] });
      const facade: Gauge = {
        set: (value, labels) => g.set(plain(labels), value),
        inc: (labels, by = 1) => g.inc(plain(labels), by),
        reset: () => g.reset(),
      };
      return { metric: g, facade };
    }) as Gauge;
  }

  histogram(def: HistogramDef): Histogram {
    return this.get('histogram', def, () => {
      const h = new client.Histogram({
        name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], buckets: [...(def.buckets ?? LATENCY_BUCKETS)], registers: [this.registry],
      });
      const facade: Histogram = { observe: (value, labels) => h.observe(plain(labels), value) };
      return { metric: h, facade };
    }) as Histogram;
  }

  onCollect(fn: () => void): () => void {
    this.hooks.add(fn);
    return () => void this.hooks.delete(fn);
  }

  /**
   * The metric `def.name`, made once. @throws Error when the name was registered before with
   * another kind or other label names (a programming error: two components disagree on a name).
   */
  private get(kind: Kind, def: MetricDef, make: () => { metric: Prom; facade: Counter | Gauge | Histogram }): Counter | Gauge | Histogram {
    const labels = (def.labelNames ?? []).join(',');
    const have = this.metrics.get(def.name);
    if (have) {
      if (have.kind !== kind || have.labels !== labels) {
        throw new Error(`metric ${def.name} is registered as a ${have.kind} with labels [${have.labels}]; asked for a ${kind} with [${labels}]`);
      }
      return have.facade;
    }
    const made = make();
    this.metrics.set(def.name, { kind, labels, ...made });
    return made.facade;
  }
}
