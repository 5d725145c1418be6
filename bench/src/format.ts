/**
 * A number for people: `digits` decimals below 100 (default: 1 below 10, else none), thousands
 * grouped; `n/a` for NaN or infinity.
 */
export function formatNumber(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const decimals = digits ?? (Math.abs(value) < 10 ? 1 : 0);
  const places = Math.abs(value) >= 100 && digits === undefined ? 0 : decimals;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: places,
    maximumFractionDigits: places,
  });
}

/** A fraction as a percentage with no decimals. */
export function formatPercent(fraction: number): string {
  return `${formatNumber(fraction * 100, 0)}%`;
}
