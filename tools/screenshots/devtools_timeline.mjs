// SPDX-License-Identifier: MIT
// Screenshots a Chrome trace event file (archtrace --format chrome) in the
// Performance panel of the DevTools that ship inside Debian's chromium: the
// same trace viewer family as chrome://tracing and Perfetto, and available
// offline.  Driven with playwright-core; the flame chart is a canvas, so
// rows are expanded by clicking their computed positions.
//
//   node devtools_timeline.mjs TRACE.json OUT.png run|gil
//
// run: the whole recording, the busiest process opened;
// gil: 60 ms in the middle of the stretch where the two threads that waited
//      longest for the GIL both ran, those two threads opened, so the
//      "GIL held" / "GIL wait" slices carry their names.
//
// DevTools lists processes, and threads inside a process, by their number
// of timed events, most first; the rows to open are found the same way.
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [tracePath, outPath, mode = 'run'] = process.argv.slice(2);
if (!tracePath || !outPath || !['run', 'gil'].includes(mode)) {
  console.error('usage: node devtools_timeline.mjs TRACE.json OUT.png run|gil');
  process.exit(2);
}
const VIEW = { width: 1400, height: 900 };
const ROW_PX = 20.9;        // a collapsed track header in the flame chart
const FIRST_THREAD_PX = 42; // first thread header below the process header
const OPEN_LEVEL_PX = 17;   // one level of slices in an opened thread

const GIL_WINDOW_MS = 60;
const byCountDesc = (a, b) => b[1] - a[1];

// What the viewer will show, computed from the file itself.
function summarize(events) {
  const timed = events.filter(e => typeof e.ts === 'number');
  const t0 = Math.min(...timed.map(e => e.ts));
  const t1 = Math.max(...timed.map(e => e.ts + (e.dur || 0)));
  const perPid = new Map();
  for (const e of timed) perPid.set(e.pid, (perPid.get(e.pid) || 0) + 1);
  const pid = [...perPid.entries()].sort(byCountDesc)[0][0];
  const threads = new Map();   // tid -> { events, wait, from, to }
  for (const e of timed) {
    if (e.pid !== pid || e.tid === undefined) continue;
    const t = threads.get(e.tid) ||
      { tid: e.tid, events: 0, wait: 0, from: Infinity, to: 0 };
    t.events++;
    if (e.ph === 'X' && e.cat === 'gil') {
      if (e.name === 'GIL wait') t.wait += e.dur;
      t.from = Math.min(t.from, e.ts);
      t.to = Math.max(t.to, e.ts + e.dur);
    }
    threads.set(e.tid, t);
  }
  const rows = [...threads.values()].sort((a, b) => b.events - a.events);
  const ms = ts => (ts - t0) / 1000;
  return { pid, pids: perPid.size, rows, ms, spanMs: ms(t1) };
}

// Which thread rows to open and which time range to show, per mode.
function plan(s) {
  if (mode === 'gil') {
    const w = [...s.rows].sort((a, b) => b.wait - a.wait).slice(0, 2);
    if (w.length < 2 || w[1].wait === 0) throw new Error('no two threads waited for the GIL');
    const mid = (s.ms(Math.max(w[0].from, w[1].from)) + s.ms(Math.min(w[0].to, w[1].to))) / 2;
    return { open: w, range: [mid - GIL_WINDOW_MS / 2, mid + GIL_WINDOW_MS / 2] };
  }
  // explicit, because DevTools may pick a narrower window of its own on load
  return { open: [], range: [0, s.spanMs] };
}

async function openTrace(page) {
  await page.goto('devtools://devtools/bundled/devtools_app.html');
  await page.locator('text=Performance').first().click();
  await page.locator('input[type=file]').first().setInputFiles(tracePath);
  await page.locator('[aria-label="Overview grid window"]')
    .waitFor({ state: 'visible', timeout: 120000 });
  await page.waitForTimeout(1500);
  // the first load shows a keyboard-shortcuts card and the insights sidebar
  const close = page.locator('button[aria-label="Close"]:visible');
  if (await close.count()) await close.first().click();
  const hide = page.locator('button[aria-label="Hide sidebar"]:visible');
  if (await hide.count()) await hide.first().click();
  await page.waitForTimeout(500);
}

// The busiest process is listed first and its thread rows follow its
// header.  Open them bottom-up so each click leaves the rows above in place.
async function openRows(page, s, open) {
  const chart = await page.locator('canvas').last().boundingBox();
  await page.mouse.click(chart.x + 10, chart.y + 25);
  await page.waitForTimeout(400);
  const indexes = open.map(t => s.rows.indexOf(t)).sort((a, b) => b - a);
  for (const i of indexes) {
    await page.mouse.click(chart.x + 20, chart.y + FIRST_THREAD_PX + 4 + i * ROW_PX);
    await page.waitForTimeout(300);
  }
}

// Only the rows in use: a tall empty flame chart and the (empty) summary
// pane below it would make the picture mostly white.
async function usedArea(page, s, p) {
  const chart = await page.locator('canvas').last().boundingBox();
  const rows = 1 + s.rows.length + (s.pids - 1);
  const height = Math.min(chart.y + chart.height,
    chart.y + 30 + rows * ROW_PX + p.open.length * OPEN_LEVEL_PX);
  return { x: 0, y: 0, width: VIEW.width, height: Math.round(height) };
}

// Zoom by dragging a range in the overview strip, which spans the whole run.
async function zoomTo(page, s, [fromMs, toMs]) {
  const grid = await page.locator('[aria-label="Overview grid window"]').boundingBox();
  const x = ms => grid.x + 1 + (grid.width - 2) * ms / s.spanMs;
  const y = grid.y + grid.height / 2;
  await page.mouse.move(x(fromMs), y);
  await page.mouse.down();
  await page.mouse.move(x(toMs), y, { steps: 8 });
  await page.mouse.up();
  await page.waitForTimeout(800);
}

const events = JSON.parse(readFileSync(tracePath, 'utf8')).traceEvents;
const s = summarize(events);
const p = plan(s);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage({ viewport: VIEW });
  await openTrace(page);
  await openRows(page, s, p.open);
  await zoomTo(page, s, p.range);
  await page.mouse.move(VIEW.width - 5, VIEW.height - 5);  // no hover card
  await page.screenshot({ path: outPath, clip: await usedArea(page, s, p) });
  const [from, to] = p.range.map(ms => ms.toFixed(0));
  console.log(`timeline ${mode}: ${outPath} (pid ${s.pid}, ${from}..${to} ms)`);
} finally {
  await browser.close();
}
