// The page's logic: the plan form, the comparison table, the timeline and memory views, the sweep with its
// Pareto plot, a CSV schedule and a measured run against its prediction. Every number comes from the JSON
// API (/api/...), which answers what `pipesim ... --format json` prints for the same options.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { files: {}, reports: [], trace: null, traceSchedule: '' };
const timeline = new Timeline($('timeline'), $('tooltip'));

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

async function api(path, body) {
  const options = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try { message = JSON.parse(text).error; } catch (e) { /* not JSON: show the text */ }
    throw new Error(message);
  }
  return text;
}

// The form as API options: empty fields left out, checkboxes as flags.
function planOptions() {
  const form = $('plan'), options = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'checkbox') { if (el.checked) options[el.name] = true; continue; }
    if (el.value !== '') options[el.name] = el.type === 'number' ? Number(el.value) : el.value;
  }
  if (options['global-batch']) delete options.microbatches;
  if (state.files['model.json'] && form.elements.model.value === 'model.json') options.files = { 'model.json': state.files['model.json'] };
  return options;
}

function chosenSchedules() {
  return [...document.querySelectorAll('#schedules input:checked')].map((el) => el.value);
}

function cell(value, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (value !== undefined) td.dataset.value = String(value);
  if (cls) td.className = cls;
  return td;
}

function peakBytes(report) { return Math.max(...report.ranks.map((r) => r.memory_bytes.total)); }

function renderTable(reports) {
  const body = document.querySelector('#results tbody');
  body.replaceChildren();
  const GiB = 1024 ** 3;
  const fastest = Math.min(...reports.filter((r) => r.fits).map((r) => r.step_us));
  for (const r of reports) {
    const tr = document.createElement('tr');
    tr.dataset.schedule = r.schedule;
    if (r.step_us === fastest) tr.className = 'best';
    const peak = peakBytes(r);
    tr.append(cell(r.schedule, r.schedule),
      cell(r.step_us, (r.step_us / 1e6).toFixed(3)),
      cell(r.tokens_per_s, Math.round(r.tokens_per_s).toLocaleString('en-US')),
      cell(r.mfu, `${(100 * r.mfu).toFixed(1)}%`),
      cell(r.bubble_rate, `${(100 * r.bubble_rate).toFixed(1)}%`),
      cell(peak, `${(peak / GiB).toFixed(1)} / ${(r.capacity_bytes / GiB).toFixed(1)}`, peak > r.capacity_bytes ? 'over' : ''),
      cell(r.exposed_comm_us.ep, (r.exposed_comm_us.ep / 1e3).toFixed(1)),
      cell(r.exposed_comm_us.pp, (r.exposed_comm_us.pp / 1e3).toFixed(1)),
      cell(r.exposed_comm_us.dp, (r.exposed_comm_us.dp / 1e3).toFixed(1)));
    for (const td of tr.children) td.dataset.field = td.cellIndex;
    body.append(tr);
  }
}

function renderMemory(report) {
  const GiB = 1024 ** 3, kinds = ['params', 'grads', 'optimizer', 'activations'];
  const bars = report.ranks.map((r) => ({ label: `rank ${r.rank}`, parts: kinds.map((k) => r.memory_bytes[k] / GiB) }));
  stackedBars($('memory'), bars, kinds, report.capacity_bytes / GiB, 'GiB');
}

async function showTimeline(schedule) {
  const options = { ...planOptions(), schedule };
  state.trace = await api('/api/trace', options);
  state.traceSchedule = schedule;
  timeline.load(JSON.parse(state.trace));
  const report = state.reports.find((r) => r.schedule === schedule);
  if (report) renderMemory(report);
  $('download-trace').disabled = false;
  $('download-csv').disabled = false;
}

async function compareSchedules() {
  showError('');
  const schedules = chosenSchedules();
  if (!schedules.length) return showError('choose at least one schedule to compare');
  $('busy').hidden = false;
  try {
    const text = await api('/api/simulate', { ...planOptions(), schedule: schedules.join(',') });
    const parsed = JSON.parse(text);
    state.reports = Array.isArray(parsed) ? parsed : [parsed];
    state.json = text;
    renderTable(state.reports);
    $('download-json').disabled = false;
    const select = $('timeline-schedule');
    select.replaceChildren(...state.reports.map((r) => new Option(r.schedule, r.schedule)));
    const best = document.querySelector('#results tr.best');
    select.value = best ? best.dataset.schedule : state.reports[0].schedule;
    await showTimeline(select.value);
    document.body.dataset.ready = 'true';
  } catch (e) {
    showError(e.message);
  } finally {
    $('busy').hidden = true;
  }
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url; a.download = name; a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function downloadCsv() {
  try {
    const o = planOptions();
    const text = await api('/api/schedule', { schedule: state.traceSchedule, pp: o.pp, microbatches: o.microbatches || 8, format: 'csv' });
    download(`${state.traceSchedule}.csv`, text, 'text/csv');
  } catch (e) { showError(e.message); }
}

// A sweep over the plan: rows stream in as server-sent events; the Pareto plot grows as they come.
async function runSweep(event) {
  event.preventDefault();
  showError('');
  const form = $('sweep'), vary = [form.elements.vary.value, form.elements.vary2.value].filter((v) => v.trim());
  const options = { ...planOptions(), vary };
  delete options.schedule;
  const rows = [];
  $('sweep-status').textContent = 'starting…';
  try {
    const response = await fetch('/api/sweep', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(options) });
    if (!response.ok) throw new Error(JSON.parse(await response.text()).error);
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const kind = (block.match(/^event: (.*)$/m) || [])[1], data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1]);
        if (kind === 'progress') {
          $('sweep-progress').max = data.total; $('sweep-progress').value = data.done;
          $('sweep-status').textContent = `${data.done}/${data.total} points`;
        } else if (kind === 'row') {
          rows.push(data); plotSweep(rows);
        } else if (kind === 'result') {
          plotSweep(data);
          $('sweep-status').textContent = `${data.length} points, ${data.filter((r) => r.pareto).length} on the Pareto front`;
          $('pareto').dataset.points = String(data.filter((r) => !r.error).length);
        } else if (kind === 'error') {
          throw new Error(data.error);
        }
      }
    }
  } catch (e) {
    showError(e.message);
    $('sweep-status').textContent = 'failed';
  }
}

function plotSweep(rows) {
  const ok = rows.filter((r) => !r.error);
  scatter($('pareto'), ok.map((r) => ({ x: r.step_s, y: r.peak_memory_gib, group: r.schedule || 'plan', mark: r.pareto })),
    'step time (s)', 'peak memory (GiB)');
}

async function uploadCsv() {
  const file = $('csv-file').files[0];
  if (!file) return;
  showError('');
  try {
    const files = { 'upload.csv': await file.text() };
    const metrics = JSON.parse(await api('/api/simulate', { 'from-csv': 'upload.csv', files }));
    $('csv-result').textContent = `${file.name}: ${metrics.schedule}, ${metrics.stages} stages, ${metrics.microbatches} micro-batches; ` +
      `makespan ${(metrics.makespan_us / 1e3).toFixed(2)} ms, bubble ${(100 * metrics.bubble_rate).toFixed(1)}% ` +
      '(F = I = 1 ms, W = 0.5 ms: the CLI\'s default costs)';
    $('csv-result').dataset.makespan = String(metrics.makespan_us);
    state.trace = await api('/api/trace', { 'from-csv': 'upload.csv', files });
    state.traceSchedule = metrics.schedule;
    timeline.load(JSON.parse(state.trace));
  } catch (e) {
    $('csv-result').textContent = '';
    showError(`${file.name}: ${e.message}`);
  }
}

async function uploadRun() {
  const file = $('run-file').files[0];
  if (!file) return;
  showError('');
  try {
    const c = JSON.parse(await api('/api/compare', { files: { 'run.json': await file.text() } }));
    $('compare-summary').textContent = `makespan: measured ${(c.measured_makespan_us / 1e3).toFixed(3)} ms, predicted ` +
      `${(c.predicted_makespan_us / 1e3).toFixed(3)} ms, error ${(100 * c.makespan_error).toFixed(1)}%`;
    pairedBars($('bubbles'), c.ranks.map((r) => ({ label: `rank ${r.rank}`, a: r.bubble_measured, b: r.bubble_predicted })),
      'bubble measured', 'bubble predicted');
    $('deviations').replaceChildren(...c.deviating_actions.map((d) => {
      const li = document.createElement('li');
      li.textContent = `${d.action} on rank ${d.rank}: ${d.measured_us.toFixed(1)} µs measured vs ${d.predicted_us.toFixed(1)} µs predicted (x${d.ratio.toFixed(2)})`;
      return li;
    }));
  } catch (e) {
    showError(`${file.name}: ${e.message}`);
  }
}

async function init() {
  try {
    const [schedules, models, clusters] = await Promise.all(['/api/schedules', '/api/models', '/api/clusters'].map((p) => api(p).then(JSON.parse)));
    $('model').replaceChildren(...models.map((m) => new Option(m.name, m.name)));
    $('cluster').replaceChildren(...clusters.map((c) => new Option(c.name, c.name)));
    $('model').value = 'deepseek-v3';
    $('cluster').value = 'deepseek-h800';
    const defaults = new Set(['1f1b', 'zb-v', 'dualpipe']);
    $('schedules').replaceChildren(...schedules.map((s) => {
      const label = document.createElement('label');
      label.title = s.description;
      label.innerHTML = `<input type="checkbox" value="${s.name}"${defaults.has(s.name) ? ' checked' : ''}> ${s.name}`;
      return label;
    }));
    $('legend').innerHTML = Object.entries(COLORS).map(([k, c]) => `<span><i style="background:${c}"></i>${k === 'OVERLAP_F_B' ? 'F&B pair' : k}</span>`).join('');
  } catch (e) {
    return showError(`cannot reach the server: ${e.message}`);
  }
  $('plan').addEventListener('submit', (e) => { e.preventDefault(); compareSchedules(); });
  $('timeline-schedule').addEventListener('change', (e) => showTimeline(e.target.value).catch((err) => showError(err.message)));
  $('flows').addEventListener('change', (e) => timeline.setFlows(e.target.checked));
  $('zoom-reset').addEventListener('click', () => timeline.reset());
  $('download-trace').addEventListener('click', () => download(`${state.traceSchedule}-trace.json`, state.trace, 'application/json'));
  $('download-json').addEventListener('click', () => download('report.json', state.json, 'application/json'));
  $('download-csv').addEventListener('click', downloadCsv);
  $('sweep').addEventListener('submit', runSweep);
  $('csv-file').addEventListener('change', uploadCsv);
  $('run-file').addEventListener('change', uploadRun);
  $('model-file').addEventListener('change', async () => {
    const file = $('model-file').files[0];
    if (!file) return;
    state.files['model.json'] = await file.text();
    if (![...$('model').options].some((o) => o.value === 'model.json')) $('model').append(new Option(`${file.name} (uploaded)`, 'model.json'));
    $('model').value = 'model.json';
  });
  await compareSchedules();
}

window.pipesimTimeline = timeline;
init();
