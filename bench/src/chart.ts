import type { Figure } from './figures.ts';
import { formatNumber } from './format.ts';

const WIDTH = 920;
const LABEL_WIDTH = 290;
const BAR_LEFT = LABEL_WIDTH + 10;
const BAR_WIDTH = 400;
const ROW_HEIGHT = 34;
const HEADING_HEIGHT = 40;
const COLOURS = { met: '#2e7d32', missed: '#c62828', none: '#1565c0', axis: '#555', grid: '#ddd' };

/**
 * A horizontal bar chart of each figure's ratio to its baseline (Warren ÷ baseline), in two
 * sections: throughput (higher is better) and latency, memory and delay (lower is better). A
 * dashed line marks 1 (as fast as the baseline) and a tick marks a ratio target.
 */
export function renderChart(figures: readonly Figure[], title: string): string {
  const sections = [
    {
      heading: 'Throughput: Warren ÷ baseline (higher is better)',
      rows: byBetter(figures, 'higher'),
    },
    {
      heading: 'Latency, memory, loop delay: Warren ÷ baseline (lower is better)',
      rows: byBetter(figures, 'lower'),
    },
  ].filter((section) => section.rows.length > 0);

  const parts: string[] = [];
  let y = 50;
  for (const section of sections) {
    const scale = scaleFor(section.rows);
    parts.push(text(10, y + 20, section.heading, { weight: 'bold', size: 15 }));
    y += HEADING_HEIGHT;
    const bottom = y + section.rows.length * ROW_HEIGHT;
    parts.push(...axis(y, bottom, scale));
    for (const figure of section.rows) {
      parts.push(...row(figure, y, scale));
      y += ROW_HEIGHT;
    }
    y += 36;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" role="img" aria-label="${escapeXml(title)}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    text(10, 28, title, { weight: 'bold', size: 18 }),
    ...legend(),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function byBetter(figures: readonly Figure[], better: Figure['better']): Figure[] {
  return figures.filter((figure) => figure.better === better && Number.isFinite(figure.ratio));
}

/** Ratios from 0 to a round number above the largest ratio and target (at least 1.5). */
function scaleFor(rows: readonly Figure[]): number {
  const largest = Math.max(1.5, ...rows.map((f) => Math.max(f.ratio, f.target?.ratio ?? 0)));
  return Math.ceil(largest * 1.1 * 2) / 2;
}

function row(figure: Figure, y: number, scale: number): string[] {
  const colour = figure.target ? (figure.target.met ? COLOURS.met : COLOURS.missed) : COLOURS.none;
  const width = Math.max(1, (figure.ratio / scale) * BAR_WIDTH);
  const parts = [
    text(LABEL_WIDTH, y + 21, `${figure.id}  ${figure.name}`, { anchor: 'end', size: 13 }),
    `<rect class="bar" x="${BAR_LEFT}" y="${y + 6}" width="${width.toFixed(1)}" height="${ROW_HEIGHT - 12}" fill="${colour}"/>`,
  ];
  if (figure.target?.ratio !== undefined) {
    const x = BAR_LEFT + (figure.target.ratio / scale) * BAR_WIDTH;
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${y + 2}" x2="${x.toFixed(1)}" y2="${y + ROW_HEIGHT - 2}" stroke="#000" stroke-width="2"/>`,
    );
  }
  // Last, with a halo, so that the tick and grid lines do not run through the figures.
  parts.push(
    text(
      BAR_LEFT + width + 6,
      y + 21,
      `${formatNumber(figure.ratio, 2)}×  (${formatNumber(figure.warren)} vs ${formatNumber(figure.baseline)} ${figure.unit})`,
      { size: 12, halo: true },
    ),
  );
  return parts;
}

function axis(top: number, bottom: number, scale: number): string[] {
  const parts = [
    `<line x1="${BAR_LEFT}" y1="${top}" x2="${BAR_LEFT}" y2="${bottom}" stroke="${COLOURS.axis}"/>`,
  ];
  const step = scale <= 2 ? 0.5 : Math.ceil(scale / 4);
  for (let value = step; value <= scale + 1e-9; value += step) {
    const x = BAR_LEFT + (value / scale) * BAR_WIDTH;
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="${COLOURS.grid}"/>`,
    );
  }
  for (let value = 0; value <= scale + 1e-9; value += step) {
    const x = BAR_LEFT + (value / scale) * BAR_WIDTH;
    parts.push(text(x, bottom + 16, `${formatNumber(value, 1)}×`, { anchor: 'middle', size: 11 }));
  }
  const one = BAR_LEFT + BAR_WIDTH / scale;
  parts.push(
    `<line x1="${one.toFixed(1)}" y1="${top}" x2="${one.toFixed(1)}" y2="${bottom}" stroke="${COLOURS.axis}" stroke-dasharray="4 3"/>`,
  );
  return parts;
}

/** What the colours and the tick mean, top right. */
function legend(): string[] {
  const entries = [
    [COLOURS.met, 'target met'],
    [COLOURS.missed, 'target missed'],
    [COLOURS.none, 'no target'],
  ] as const;
  const parts = entries.flatMap(([colour, label], index) => {
    const x = 500 + index * 115;
    return [
      `<rect x="${x}" y="16" width="12" height="12" fill="${colour}"/>`,
      text(x + 17, 27, label, { size: 12 }),
    ];
  });
  parts.push(
    '<line x1="848" y1="14" x2="848" y2="30" stroke="#000" stroke-width="2"/>',
    text(854, 27, 'target', { size: 12 }),
  );
  return parts;
}

interface TextStyle {
  anchor?: 'start' | 'middle' | 'end';
  /** A white outline, so the text stays legible over grid lines and ticks. */
  halo?: boolean;
  weight?: 'bold';
  size?: number;
}

function text(x: number, y: number, content: string, style: TextStyle = {}): string {
  const attributes = [
    `x="${x.toFixed(1)}"`,
    `y="${y.toFixed(1)}"`,
    `font-size="${style.size ?? 12}"`,
    style.anchor ? `text-anchor="${style.anchor}"` : '',
    style.weight ? `font-weight="${style.weight}"` : '',
    style.halo ? 'paint-order="stroke" stroke="#fff" stroke-width="3"' : '',
  ].filter(Boolean);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

/** Escapes text for SVG (XML) content and attribute values. */
export function escapeXml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}
