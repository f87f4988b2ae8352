/** Plain-text table: columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (s: string) => /^[-\d.,]+( ?[a-zA-Z/×%]+)?$/.test(s);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric(c) && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const fmt = {
  ms: (x: number) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms` : '-'),
  rate: (x: number, unit: string) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ${unit}` : '-'),
  ratio: (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-'),
  mb: (bytes: number) => (bytes > 0 ? `${(bytes / 2 ** 20).toFixed(0)} MB` : '-'),
};
