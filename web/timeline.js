// The timeline: a Chrome trace (what `pipesim simulate --trace` writes) drawn on a canvas, one block per rank
// with a lane per stream (compute, point-to-point sends, EP all-to-all, DP) and a memory counter. Only what
// is on screen is drawn (binary search per lane), so 16 ranks x 120 micro-batches stay smooth. Wheel zooms
// at the pointer, dragging pans, hovering names the action, its start, duration and what it waited for.
'use strict';

const COLORS = { F: '#4a90d9', B: '#2e9e5b', I: '#86cf86', W: '#a77bc8', OVERLAP_F_B: '#f0a030', p2p: '#9a9a9a',
  ep: '#e07b39', dp: '#c0392b' };
const LANE_ORDER = [0, 1, 2, 100, 101];
const LANE_NAMES = { 0: 'compute', 1: 'p2p', 2: 'p2p 2', 100: 'EP', 101: 'DP' };
const LANE_HEIGHT = { 0: 16, 1: 6, 2: 6, 100: 7, 101: 7 };
const MEMORY_HEIGHT = 12, GAP = 5, LEFT = 70;

class Timeline {
  constructor(canvas, tooltip) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.flows = false;
    this.lanes = [];
    this.view = { t0: 0, t1: 1 };
    this.drag = null;
    canvas.addEventListener('wheel', (e) => { e.preventDefault(); this.zoomAt(e.offsetX, e.deltaY); }, { passive: false });
    canvas.addEventListener('mousedown', (e) => { this.drag = { x: e.offsetX, t0: this.view.t0, t1: this.view.t1 }; });
    window.addEventListener('mouseup', () => { this.drag = null; });
    canvas.addEventListener('mousemove', (e) => this.move(e.offsetX, e.offsetY));
    canvas.addEventListener('mouseleave', () => { this.tooltip.hidden = true; });
  }

  // Reads the trace's events into lanes sorted by start; keeps flows and memory counters per rank.
  load(trace) {
    const events = Array.isArray(trace) ? trace : trace.traceEvents;
    const byLane = new Map(), memory = new Map(), starts = new Map(), flows = [];
    let end = 0;
    for (const e of events) {
      if (e.ph === 'X') {
        const key = `${e.pid}/${e.tid}`;
        if (!byLane.has(key)) byLane.set(key, { pid: e.pid, tid: e.tid, events: [], waits: [], maxDur: 0 });
        const lane = byLane.get(key);
        (e.cat === 'wait' ? lane.waits : lane.events).push(e);
        lane.maxDur = Math.max(lane.maxDur, e.dur);
        end = Math.max(end, e.ts + e.dur);
      } else if (e.ph === 'C' && e.args && 'bytes' in e.args) {
        if (!memory.has(e.pid)) memory.set(e.pid, []);
        memory.get(e.pid).push([e.ts, e.args.bytes]);
      } else if (e.ph === 's') {
        starts.set(e.id, e);
      } else if (e.ph === 'f' && starts.has(e.id)) {
        flows.push([starts.get(e.id), e]);
      }
    }
    const ranks = [...new Set([...byLane.values()].map((l) => l.pid))].sort((a, b) => a - b);
    this.lanes = [];
    this.rows = [];
    let y = 4;
    this.memoryMax = 1;
    for (const m of memory.values()) for (const [, b] of m) this.memoryMax = Math.max(this.memoryMax, b);
    for (const pid of ranks) {
      for (const tid of LANE_ORDER) {
        const lane = byLane.get(`${pid}/${tid}`);
        if (!lane) continue;
        lane.events.sort((a, b) => a.ts - b.ts);
        lane.waits.sort((a, b) => a.ts - b.ts);
        lane.y = y;
        lane.h = LANE_HEIGHT[tid] || 6;
        this.lanes.push(lane);
        y += lane.h + 1;
      }
      this.rows.push({ pid, y, memory: (memory.get(pid) || []).sort((a, b) => a[0] - b[0]) });
      y += MEMORY_HEIGHT + GAP;
    }
    this.flowPairs = flows;
    this.end = end || 1;
    this.canvas.height = y + 18;
    this.reset();
  }

  reset() { this.view = { t0: 0, t1: this.end }; this.draw(); }
  zoomTo(t0, t1) { this.view = { t0: Math.max(0, t0), t1: Math.max(t0 + 1e-3, t1) }; this.draw(); }
  setFlows(on) { this.flows = on; this.draw(); }

  x(t) { return LEFT + ((t - this.view.t0) / (this.view.t1 - this.view.t0)) * (this.canvas.width - LEFT - 4); }
  time(x) { return this.view.t0 + ((x - LEFT) / (this.canvas.width - LEFT - 4)) * (this.view.t1 - this.view.t0); }

  zoomAt(x, deltaY) {
    const t = this.time(Math.max(LEFT, x)), f = Math.pow(1.25, deltaY / 100);
    this.zoomTo(t - (t - this.view.t0) * f, t + (this.view.t1 - t) * f);
  }

  // First event of `list` that may end after t (events sorted by start; none lasts longer than maxDur).
  static first(list, t, maxDur) {
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (list[mid].ts + maxDur < t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  draw() {
    const c = this.canvas.getContext('2d'), { t0, t1 } = this.view;
    c.clearRect(0, 0, this.canvas.width, this.canvas.height);
    c.font = '11px sans-serif';
    c.textBaseline = 'middle';
    let drawn = 0;
    for (const lane of this.lanes) {
      c.fillStyle = '#555';
      if (lane.tid === 0) c.fillText(`rank ${lane.pid}`, 4, lane.y + lane.h / 2);
      for (let i = Timeline.first(lane.events, t0, lane.maxDur); i < lane.events.length; ++i) {
        const e = lane.events[i];
        if (e.ts > t1) break;
        const x0 = this.x(e.ts), x1 = this.x(e.ts + e.dur), w = Math.max(1, x1 - x0);
        c.fillStyle = COLORS[e.cat] || '#bbb';
        c.fillRect(x0, lane.y, w, lane.h);
        if (e.cat === 'OVERLAP_F_B') { c.strokeStyle = '#7a4a00'; c.lineWidth = 1.5; c.strokeRect(x0 + 0.5, lane.y + 0.5, w - 1, lane.h - 1); }
        if (lane.tid === 0 && w > 34) { c.fillStyle = '#fff'; c.fillText(e.name.replace(/^\((.*)\)OVERLAP_F_B$/, '$1'), x0 + 2, lane.y + lane.h / 2, w - 4); }
        ++drawn;
      }
    }
    for (const row of this.rows) this.drawMemory(c, row);
    if (this.flows) this.drawFlows(c);
    this.drawAxis(c);
    this.drawnLast = drawn;
  }

  drawMemory(c, row) {
    c.strokeStyle = '#c06'; c.lineWidth = 1; c.beginPath();
    let started = false, last = 0;
    const y = (b) => row.y + MEMORY_HEIGHT - (b / this.memoryMax) * MEMORY_HEIGHT;
    for (const [ts, bytes] of row.memory) {
      const px = Math.min(Math.max(this.x(ts), LEFT), this.canvas.width);
      if (!started) { c.moveTo(LEFT, y(bytes)); started = true; } else c.lineTo(px, y(last));
      c.lineTo(px, y(bytes));
      last = bytes;
    }
    if (started) { c.lineTo(this.canvas.width, y(last)); c.stroke(); }
  }

  drawFlows(c) {
    const laneOf = (pid, tid) => this.lanes.find((l) => l.pid === pid && l.tid === tid) || this.lanes.find((l) => l.pid === pid);
    c.strokeStyle = 'rgba(60,60,60,0.5)'; c.lineWidth = 1;
    for (const [s, f] of this.flowPairs) {
      if (Math.max(s.ts, f.ts) < this.view.t0 || Math.min(s.ts, f.ts) > this.view.t1) continue;
      const a = laneOf(s.pid, s.tid), b = laneOf(f.pid, f.tid);
      if (!a || !b) continue;
      c.beginPath(); c.moveTo(this.x(s.ts), a.y + a.h / 2); c.lineTo(this.x(f.ts), b.y + b.h / 2); c.stroke();
    }
  }

  drawAxis(c) {
    const y = this.canvas.height - 10, span = this.view.t1 - this.view.t0;
    const step = Math.pow(10, Math.floor(Math.log10(span / 6)));
    c.fillStyle = '#444'; c.textBaseline = 'middle';
    for (let t = Math.ceil(this.view.t0 / step) * step; t <= this.view.t1; t += step)
      c.fillText(formatTime(t), this.x(t), y);
  }

  // The action under (x, y), or null.
  eventAt(x, y) {
    const lane = this.lanes.find((l) => y >= l.y && y < l.y + l.h);
    if (!lane) return null;
    const t = this.time(x);
    for (let i = Timeline.first(lane.events, t, lane.maxDur); i < lane.events.length && lane.events[i].ts <= t; ++i) {
      const e = lane.events[i];
      if (t <= e.ts + e.dur) return { lane, event: e };
    }
    return null;
  }

  describe(hit) {
    const e = hit.event, lines = [e.name, `${LANE_NAMES[hit.lane.tid] || 'lane'} of rank ${hit.lane.pid}`,
      `start ${formatTime(e.ts)}, duration ${formatTime(e.dur)}`];
    const wait = hit.lane.waits.find((w) => Math.abs(w.ts + w.dur - e.ts) < 1e-3);
    if (wait) lines.push(`waited ${formatTime(wait.dur)} for ${wait.args.op} from rank ${wait.args.from_rank}`);
    else if (hit.lane.tid === 0) lines.push('started as soon as its rank was free');
    if (e.args && e.args.during) lines.push(`during ${e.args.during}`);
    return lines.join('\n');
  }

  move(x, y) {
    if (this.drag) {
      const dt = ((x - this.drag.x) / (this.canvas.width - LEFT - 4)) * (this.drag.t1 - this.drag.t0);
      this.view = { t0: this.drag.t0 - dt, t1: this.drag.t1 - dt };
      this.draw();
      return;
    }
    const hit = this.eventAt(x, y);
    if (!hit) { this.tooltip.hidden = true; return; }
    this.tooltip.textContent = this.describe(hit);
    this.tooltip.dataset.action = hit.event.name;
    this.tooltip.style.left = `${Math.min(x + 14, this.canvas.clientWidth - 260)}px`;
    this.tooltip.style.top = `${y + 14}px`;
    this.tooltip.hidden = false;
  }
}

// Microseconds (the trace's unit) as the most readable unit.
function formatTime(us) {
  if (Math.abs(us) >= 1e6) return `${(us / 1e6).toFixed(3)} s`;
  if (Math.abs(us) >= 1e3) return `${(us / 1e3).toFixed(2)} ms`;
  return `${us.toFixed(1)} µs`;
}
