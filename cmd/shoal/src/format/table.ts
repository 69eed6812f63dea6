/**
 * A table writer with the semantics of Go's `text/tabwriter` as the Docker CLI configures it
 * (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`, docker/cli `formatter.go`): every cell but the
 * last of a row is a column cell, padded with spaces to the column width; the column width is the
 * widest cell plus 3 (padding), and at least 10 (min width); the last cell of each row is written
 * as is. Widths count Unicode code points, as tabwriter counts runes. Rows end with `\n`.
 */
export interface TableOptions {
  /** Minimum column width, padding included. Docker: 10. */
  minWidth?: number;
  /** Spaces added after the widest cell of a column. Docker: 3. */
  padding?: number;
}

/** Display width of a cell: its number of code points. */
export function cellWidth(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Renders rows (the header is simply the first row) into aligned text.
 * @param rows each row is a list of cells; rows may have different lengths (a short row only
 *   takes part in the columns it has, as with tabwriter's column blocks for the common case of
 *   equal-length rows).
 */
export function formatTable(rows: readonly (readonly string[])[], opts: TableOptions = {}): string {
  const minWidth = opts.minWidth ?? 10;
  const padding = opts.padding ?? 3;
  const widths: number[] = [];
  for (const row of rows) {
    for (let c = 0; c < row.length - 1; c++) {
      const w = Math.max(minWidth, cellWidth(row[c]!) + padding);
      if (w > (widths[c] ?? 0)) widths[c] = w;
    }
  }
  let out = '';
  for (const row of rows) {
    for (let c = 0; c < row.length; c++) {
      const cell = row[c]!;
      out += cell;
      if (c < row.length - 1) out += ' '.repeat((widths[c] ?? 0) - cellWidth(cell));
    }
    out += '\n';
  }
  return out;
}
