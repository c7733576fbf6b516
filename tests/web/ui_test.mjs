// The web UI in a real browser: Playwright (playwright-core) drives Debian's chromium, headless, against
// `pipesim serve` on a free port. It loads the DeepSeek-V3 comparison of three schedules and checks the
// table against the CLI's JSON for the same plan, zooms the timeline and checks the hovered action, uploads
// a CSV schedule, runs a small sweep and counts its Pareto points, and uploads bad files to see the errors.
// Screenshots go to ARTIFACTS (default: ./web-artifacts). Usage: node ui_test.mjs PATH/TO/pipesim
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const pipesim = path.resolve(process.argv[2] || 'build/cli/pipesim');
const artifacts = path.resolve(process.env.ARTIFACTS || 'web-artifacts');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(artifacts, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pipesim-ui-'));
const cli = (...args) => execFileSync(pipesim, args, { encoding: 'utf8' });
const PLAN = ['--model', 'deepseek-v3', '--cluster', 'deepseek-h800', '--pp', '16', '--ep', '64', '--tp', '1',
  '--microbatches', '120', '--precision', 'fp8', '--selective-recompute'];

function startServer() {
  const server = spawn(pipesim, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/[^ ]+\//);
      if (m) resolve({ server, url: m[0] });
    });
    server.on('exit', (code) => reject(new Error(`pipesim serve exited with ${code}: ${out}`)));
  });
}

const steps = [];
async function step(name, body) {
  const t0 = Date.now();
  await body();
  steps.push(`${name}: ${Date.now() - t0} ms`);
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

const { server, url } = await startServer();
const browser = await chromium.launch({ executablePath: browserPath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'] });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await step('the page shows the DeepSeek-V3 study with its timeline', async () => {
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    console.log(`  page ready in ${Date.now() - t0} ms (goal: 2000 ms)`);
    await page.screenshot({ path: path.join(artifacts, 'study.png'), fullPage: true });
  });

  await step('the table equals the CLI JSON for the same plan', async () => {
    const want = JSON.parse(cli('simulate', ...PLAN, '--schedule', '1f1b,zb-v,dualpipe', '--format', 'json'));
    const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.dataset.value)));
    assert.equal(rows.length, 3);
    want.forEach((r, i) => {
      const peak = Math.max(...r.ranks.map((x) => x.memory_bytes.total));
      const expected = [r.schedule, r.step_us, r.tokens_per_s, r.mfu, r.bubble_rate, peak, r.exposed_comm_us.ep,
        r.exposed_comm_us.pp, r.exposed_comm_us.dp].map(String);
      assert.deepEqual(rows[i], expected, `row ${i} (${r.schedule})`);
    });
  });

  await step('the timeline redraws fast enough to stay smooth (16 ranks x 120 micro-batches)', async () => {
    const ms = await page.evaluate(() => {
      const t = window.pipesimTimeline, t0 = performance.now();
      for (let i = 0; i < 20; ++i) t.draw();
      return (performance.now() - t0) / 20;
    });
    console.log(`  whole-step redraw: ${ms.toFixed(1)} ms per frame`);
    assert.ok(ms < 100, `a redraw takes ${ms} ms`);
  });

  await step('zooming the timeline and hovering an action names it', async () => {
    const canvas = page.locator('#timeline');
    const box = await canvas.boundingBox();
    const before = await page.evaluate(() => window.pipesimTimeline.view.t1 - window.pipesimTimeline.view.t0);
    await page.mouse.move(box.x + box.width * 0.5, box.y + 10);
    for (let i = 0; i < 5; ++i) await page.mouse.wheel(0, -300);
    const after = await page.evaluate(() => window.pipesimTimeline.view.t1 - window.pipesimTimeline.view.t0);
    assert.ok(after < before / 10, `zoomed span ${after} vs ${before}`);
    // An action on rank 0's compute lane inside the zoomed view, hovered at its middle.
    const target = await page.evaluate(() => {
      const t = window.pipesimTimeline, lane = t.lanes.find((l) => l.pid === 0 && l.tid === 0);
      const e = lane.events.find((x) => x.ts >= t.view.t0 && x.ts + x.dur <= t.view.t1 && t.x(x.ts + x.dur) - t.x(x.ts) > 6);
      const scale = t.canvas.clientWidth / t.canvas.width;
      return { name: e.name, x: scale * (t.x(e.ts) + t.x(e.ts + e.dur)) / 2, y: scale * (lane.y + lane.h / 2) };
    });
    await page.mouse.move(box.x + target.x, box.y + target.y);
    const tooltip = page.locator('#tooltip');
    await tooltip.waitFor({ state: 'visible' });
    assert.equal(await tooltip.getAttribute('data-action'), target.name);
    const text = await tooltip.textContent();
    assert.match(text, /start .*duration/);
    await page.screenshot({ path: path.join(artifacts, 'timeline-zoomed.png') });
  });

  await step('a CSV schedule uploads and simulates as the CLI does', async () => {
    const csv = path.join(work, 'zbh1.csv');
    fs.writeFileSync(csv, cli('schedule', '--schedule', 'zb-h1', '--pp', '4', '-m', '8', '--format', 'csv'));
    const want = JSON.parse(cli('simulate', '--from-csv', csv, '--format', 'json'));
    await page.setInputFiles('#csv-file', csv);
    await page.waitForFunction(() => document.querySelector('#csv-result').dataset.makespan);
    assert.equal(await page.getAttribute('#csv-result', 'data-makespan'), String(want.makespan_us));
  });

  await step('a small sweep streams and plots its Pareto points', async () => {
    await page.fill('#sweep input[name=vary]', 'schedule=1f1b,dualpipe');
    await page.fill('#sweep input[name=vary2]', 'microbatches=60,120');
    await page.click('#sweep button');
    await page.waitForSelector('#pareto[data-points="4"]', { timeout: 60000 });
    assert.match(await page.textContent('#sweep-status'), /4 points, \d on the Pareto front/);
    await page.screenshot({ path: path.join(artifacts, 'sweep.png'), fullPage: true });
  });

  await step('a measured run is held against its prediction', async () => {
    const run = path.join(work, 'run.json');
    cli('run', '--threads', '2', '--device', 'cpu', '--schedule', '1f1b', '-m', '4', '--layers', '4', '--hidden', '32',
      '--heads', '2', '--ffn', '64', '--seq', '16', '--steps', '2', '--timeline', run);
    await page.setInputFiles('#run-file', run);
    await page.waitForFunction(() => document.querySelector('#compare-summary').textContent.includes('predicted'));
    assert.match(await page.textContent('#compare-summary'), /measured [\d.]+ ms, predicted [\d.]+ ms, error -?[\d.]+%/);
    assert.ok((await page.$$('#deviations li')).length > 0, 'no deviating actions listed');
  });

  await step('bad files are answered with a message naming them', async () => {
    const bad = path.join(work, 'broken-run.json');
    fs.writeFileSync(bad, '{"schedule": ');
    await page.setInputFiles('#run-file', bad);
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error'), /broken-run\.json/);
    const badCsv = path.join(work, 'garbage.csv');
    fs.writeFileSync(badCsv, 'rank,step\n0,F9X\n');
    await page.setInputFiles('#csv-file', badCsv);
    await page.waitForFunction(() => document.querySelector('#error').textContent.includes('garbage.csv'));
    await page.screenshot({ path: path.join(artifacts, 'error.png') });
  });

  assert.deepEqual(pageErrors, [], 'the page threw');
} catch (e) {
  failed = true;
  console.error(`not ok - ${e.stack || e}`);
} finally {
  await browser.close();
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(failed ? 'FAILED' : `all browser checks passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
