// Line charts of the last hour, drawn as SVG by hand: small, and no framework to load.
// Every text goes through textContent, never markup.
/* global document */

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 160;
const MARGIN = { left: 48, right: 10, top: 10, bottom: 22 };
const MINUTE = 60_000;

/**
 * Draws series of [time ms, value] points over [from, to] into `container`, replacing what was
 * there. Each series gets the CSS class it names, which sets its colour.
 * @param {HTMLElement} container
 * @param {{ from: number, to: number, series: Array<{ label: string, className: string, points: Array<[number, number]> }> }} chart
 */
export function drawChart(container, { from, to, series }) {
  const svg = element('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': series.map((s) => s.label).join(', '),
  });
  const plot = {
    x0: MARGIN.left,
    x1: WIDTH - MARGIN.right,
    y0: HEIGHT - MARGIN.bottom,
    y1: MARGIN.top,
  };
  const max = niceCeiling(Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const x = (t) => plot.x0 + ((t - from) / (to - from)) * (plot.x1 - plot.x0);
  const y = (v) => plot.y0 - (v / max) * (plot.y0 - plot.y1);

  for (const value of [0, max / 2, max]) {
    svg.append(
      element('line', { x1: plot.x0, x2: plot.x1, y1: y(value), y2: y(value), class: 'grid' }),
      text(plot.x0 - 6, y(value) + 4, formatNumber(value), 'axis end'),
    );
  }
  const span = (to - from) / MINUTE;
  const step = span <= 6 ? 1 : span <= 15 ? 3 : span <= 30 ? 5 : 15;
  for (let minutes = 0; minutes <= span; minutes += step) {
    const label = minutes === 0 ? 'now' : `−${minutes} min`;
    svg.append(text(x(to - minutes * MINUTE), HEIGHT - 6, label, 'axis middle'));
  }
  let drawn = 0;
  for (const s of series) {
    const points = s.points.filter(([t]) => t >= from && t <= to);
    if (points.length === 0) continue;
    drawn++;
    if (points.length === 1) {
      const [[t, v]] = points;
      svg.append(element('circle', { cx: x(t), cy: y(v), r: 3, class: `dot ${s.className}` }));
      continue;
    }
    const path = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    svg.append(element('polyline', { points: path, class: `line ${s.className}` }));
  }
  if (drawn === 0) {
    svg.append(text((plot.x0 + plot.x1) / 2, HEIGHT / 2, 'collecting…', 'empty middle'));
  }
  container.replaceChildren(svg);
}

/** Fills a legend list: one item per series, its swatch coloured by the series' class. */
export function drawLegend(list, series) {
  list.replaceChildren(
    ...series.map((s) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `swatch ${s.className}`;
      item.append(swatch, document.createTextNode(s.label));
      return item;
    }),
  );
}

/** A number for people: whole when large, one decimal when small. */
export function formatNumber(value) {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString();
  return value.toFixed(1);
}

/** 1, 2 or 5 times a power of ten, at least `value`: round numbers on the axis. */
function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function text(x, y, content, className) {
  const node = element('text', { x, y, class: className });
  node.textContent = content;
  return node;
}
