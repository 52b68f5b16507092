// Pure statistics and formatting for the benchmark table (unit tested).

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    runs: values.length,
  };
}

/** value / baseline, or null when either is missing or the baseline is zero. */
export function ratio(value: number | undefined, baseline: number | undefined): number | null {
  if (value === undefined || baseline === undefined || baseline === 0) return null;
  return value / baseline;
}

/** Seconds with three significant decimals for short runs, two for long ones. */
export function formatSeconds(s: number): string {
  return s < 10 ? `${s.toFixed(3)} s` : `${s.toFixed(2)} s`;
}

export function formatMicros(us: number): string {
  return us < 10 ? `${us.toFixed(2)} us` : `${us.toFixed(1)} us`;
}

export function formatRatio(r: number | null): string {
  return r === null ? '-' : `${r.toFixed(2)}x`;
}

export function formatMegabytes(kib: number | undefined): string {
  if (kib === undefined) return '-';
  const mb = kib / 1024;
  return `${mb < 10 ? mb.toFixed(1) : mb.toFixed(0)} MB`;
}

/** Plain-text table: columns padded to their widest cell, numbers right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-\d.]/.test(r[i] ?? '') || r[i] === ''));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** GitHub-flavoured markdown table; pipes in cells are escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (c: string) => c.replace(/\|/g, '\\|');
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-\d.]/.test(r[i] ?? '')));
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map((_, i) => (numeric[i] ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${header.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`),
  ].join('\n');
}
