// Small canvas charts for the page: stacked bars (memory per rank by kind), a scatter (a sweep's Pareto
// plot, one colour per schedule) and paired bars (measured vs predicted bubble per rank).
'use strict';

const PALETTE = ['#4a90d9', '#e07b39', '#2e9e5b', '#a77bc8', '#c0392b', '#8c6d31', '#17becf', '#7f7f7f'];

function clearCanvas(canvas) {
  const c = canvas.getContext('2d');
  c.clearRect(0, 0, canvas.width, canvas.height);
  c.font = '11px sans-serif';
  c.textBaseline = 'middle';
  return c;
}

function legend(c, items, x, y) {
  for (const [label, color] of items) {
    c.fillStyle = color; c.fillRect(x, y - 5, 10, 10);
    c.fillStyle = '#333'; c.fillText(label, x + 14, y);
    x += c.measureText(label).width + 34;
  }
}

// bars: [{label, parts: [values]}], kinds: [names]; a dashed line at `limit` (capacity) when given.
function stackedBars(canvas, bars, kinds, limit, unit) {
  const c = clearCanvas(canvas), left = 60, bottom = canvas.height - 36, top = 24;
  const max = Math.max(limit || 0, ...bars.map((b) => b.parts.reduce((s, v) => s + v, 0))) || 1;
  const w = (canvas.width - left - 10) / Math.max(1, bars.length);
  const y = (v) => bottom - (v / max) * (bottom - top);
  bars.forEach((b, i) => {
    let at = 0;
    b.parts.forEach((v, k) => {
      c.fillStyle = PALETTE[k % PALETTE.length];
      c.fillRect(left + i * w + 2, y(at + v), w - 4, y(at) - y(at + v));
      at += v;
    });
    c.fillStyle = '#333'; c.fillText(b.label, left + i * w + 2, bottom + 10, w - 2);
  });
  if (limit) {
    c.strokeStyle = '#c00'; c.setLineDash([5, 4]); c.beginPath(); c.moveTo(left, y(limit)); c.lineTo(canvas.width, y(limit)); c.stroke();
    c.setLineDash([]); c.fillStyle = '#c00'; c.fillText(`capacity ${limit.toFixed(1)} ${unit}`, left + 4, y(limit) - 7);
  }
  c.fillStyle = '#333'; c.fillText(`${max.toFixed(1)} ${unit}`, 4, top); c.fillText(`0`, 4, bottom);
  legend(c, kinds.map((k, i) => [k, PALETTE[i % PALETTE.length]]), left, canvas.height - 10);
}

// points: [{x, y, group, mark}]; marked points (the Pareto front) get a ring.
function scatter(canvas, points, xLabel, yLabel) {
  const c = clearCanvas(canvas), left = 60, bottom = canvas.height - 40, top = 16, right = canvas.width - 12;
  if (!points.length) return;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const px = (v) => left + ((v - x0) / ((x1 - x0) || 1)) * (right - left);
  const py = (v) => bottom - ((v - y0) / ((y1 - y0) || 1)) * (bottom - top);
  const groups = [...new Set(points.map((p) => p.group))];
  for (const p of points) {
    c.fillStyle = PALETTE[groups.indexOf(p.group) % PALETTE.length];
    c.beginPath(); c.arc(px(p.x), py(p.y), 4, 0, 2 * Math.PI); c.fill();
    if (p.mark) { c.strokeStyle = '#000'; c.beginPath(); c.arc(px(p.x), py(p.y), 7, 0, 2 * Math.PI); c.stroke(); }
  }
  c.fillStyle = '#333';
  c.fillText(`${xLabel}: ${x0.toFixed(2)} … ${x1.toFixed(2)}`, left, bottom + 14);
  c.fillText(`${yLabel}: ${y0.toFixed(1)} … ${y1.toFixed(1)}`, 4, top);
  legend(c, groups.map((g, i) => [g, PALETTE[i % PALETTE.length]]).concat([['Pareto front (ringed)', '#fff']]), left, canvas.height - 10);
}

// pairs: [{label, a, b}] drawn side by side, a and b in [0, 1].
function pairedBars(canvas, pairs, aLabel, bLabel) {
  const c = clearCanvas(canvas), left = 40, bottom = canvas.height - 36, top = 16;
  const max = Math.max(0.01, ...pairs.flatMap((p) => [p.a, p.b]));
  const w = (canvas.width - left - 10) / Math.max(1, pairs.length);
  const y = (v) => bottom - (v / max) * (bottom - top);
  pairs.forEach((p, i) => {
    c.fillStyle = PALETTE[0]; c.fillRect(left + i * w + 2, y(p.a), w / 2 - 3, bottom - y(p.a));
    c.fillStyle = PALETTE[1]; c.fillRect(left + i * w + w / 2, y(p.b), w / 2 - 3, bottom - y(p.b));
    c.fillStyle = '#333'; c.fillText(p.label, left + i * w + 2, bottom + 10);
  });
  c.fillText(`${(100 * max).toFixed(1)}%`, 4, top);
  legend(c, [[aLabel, PALETTE[0]], [bLabel, PALETTE[1]]], left, canvas.height - 10);
}
