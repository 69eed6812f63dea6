/**
 * Human-readable durations as the Docker CLI prints them (`go-units` `HumanDuration`): "Less than
 * a second", "1 second", "N seconds", "About a minute", "N minutes", "About an hour", "N hours",
 * "N days", "N weeks", "N months", "N years". Thresholds: seconds below 60; minutes below 60; hours
 * (rounded) below 48; days below 14; weeks below ~8 (60 days); months below 2 years.
 * @param ms elapsed time in milliseconds (negative counts as 0).
 */
export function humanDuration(ms: number): string {
  const secs = Math.floor(Math.max(0, ms) / 1000);
  if (secs < 1) return 'Less than a second';
  if (secs === 1) return '1 second';
  if (secs < 60) return `${secs} seconds`;
  const mins = Math.floor(ms / 60_000);
  if (mins === 1) return 'About a minute';
  if (mins < 60) return `${mins} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/**
 * A duration in Go's `time.Duration.String()` form (`1m30s`, `500ms`, `5s`, `0s`), as Docker shows
 * durations in `inspect --pretty`. @param ms milliseconds (whole or fractional).
 */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1000) {
    out = `${trimNum(rest)}ms`;
  } else {
    const h = Math.floor(rest / 3_600_000);
    rest -= h * 3_600_000;
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    const s = rest / 1000;
    out = (h ? `${h}h` : '') + (h || m ? `${m}m` : '') + `${trimNum(s)}s`;
  }
  return neg ? `-${out}` : out;
}

function trimNum(n: number): string {
  return String(Math.round(n * 1e6) / 1e6);
}
