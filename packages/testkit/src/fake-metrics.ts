import type { Counter, Gauge, Histogram, HistogramDef, Labels, MetricDef, Metrics } from '@shoal/runtime';

const key = (labels: Labels | undefined): string =>
  JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, String(v)]));

/**
 * The `@shoal/runtime` metrics port in memory, for tests of what a component reports: values by
 * name and labels, histogram observations, and {@link collect} to run the scrape-time hooks.
 * Like the real one, a name keeps one kind.
 */
export class FakeMetrics implements Metrics {
  private readonly kinds = new Map<string, 'counter' | 'gauge' | 'histogram'>();
  private readonly values = new Map<string, Map<string, number>>();
  private readonly observed = new Map<string, { labels: Labels; value: number }[]>();
  private readonly hooks = new Set<() => void>();

  counter(def: MetricDef): Counter {
    this.kind(def.name, 'counter');
    return { inc: (labels, by = 1) => this.add(def.name, labels, by) };
  }

  gauge(def: MetricDef): Gauge {
    this.kind(def.name, 'gauge');
    return {
      set: (value, labels) => this.series(def.name).set(key(labels), value),
      inc: (labels, by = 1) => this.add(def.name, labels, by),
      reset: () => this.series(def.name).clear(),
    };
  }

  histogram(def: HistogramDef): Histogram {
    this.kind(def.name, 'histogram');
    return {
      observe: (value, labels) => {
        const list = this.observed.get(def.name) ?? [];
        list.push({ labels: { ...(labels ?? {}) }, value });
        this.observed.set(def.name, list);
      },
    };
  }

  onCollect(fn: () => void): () => void {
    this.hooks.add(fn);
    return () => void this.hooks.delete(fn);
  }

  /** Runs the scrape-time hooks (what a scrape does first). */
  collect(): void {
    for (const fn of [...this.hooks]) fn();
  }

  /** Hooks registered and not yet unregistered. */
  get hookCount(): number {
    return this.hooks.size;
  }

  /** A counter's or gauge's value for exactly `labels`; undefined if never set. */
  value(name: string, labels?: Labels): number | undefined {
    return this.values.get(name)?.get(key(labels));
  }

  /** A histogram's observations whose labels include `labels`. */
  observations(name: string, labels: Labels = {}): number[] {
    return (this.observed.get(name) ?? [])
      .filter((o) => Object.entries(labels).every(([k, v]) => String(o.labels[k]) === String(v)))
      .map((o) => o.value);
  }

  private kind(name: string, kind: 'counter' | 'gauge' | 'histogram'): void {
    const have = this.kinds.get(name);
    if (have && have !== kind) throw new Error(`metric ${name} is a ${have}, asked for a ${kind}`);
    this.kinds.set(name, kind);
  }

  private series(name: string): Map<string, number> {
    let m = this.values.get(name);
    if (!m) this.values.set(name, (m = new Map()));
    return m;
  }

  private add(name: string, labels: Labels | undefined, by: number): void {
    const m = this.series(name);
    const k = key(labels);
    m.set(k, (m.get(k) ?? 0) + by);
  }
}
