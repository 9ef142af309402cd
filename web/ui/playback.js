// playback.js — recorded footage of one camera (guards and administrators): a day's
// timeline with recorded stretches, gaps coloured by cause and the activity track;
// click or drag to scrub, hover for a still picture, jump to a time, "30 seconds
// ago", playback speed. The <video> plays /video.mp4 windows, seeking by Range.

import { T, bucharestToUTC, fmtDateTime, fmtTime, onLangChange, utcToBucharestInput } from './strings.js';
import { ApiError, api, bindText, data, grantedOnly, h, hasRole, startPage } from './app.js';

// Movie windows. The server allows an hour, but it reads every fragment header of a
// window before the first byte: a jump starts a 1-minute window (under 0.1 s from
// MinIO), and playback goes on in 5-minute ones.
const FIRST_WINDOW_MS = 60 * 1000;
const WINDOW_MS = 5 * 60 * 1000;
const NEAR_LIVE_MS = 30 * 1000;
// A window ends this far before now: every fragment it takes is then complete, so
// the movie's bytes (and ETag) do not change while the player reads it.
const SETTLED_MS = 2000;
const REFRESH_MS = 15 * 1000; // the timeline of today, as footage arrives
const PREVIEW_DELAY_MS = 120;

// Canvas colours; the legend's swatches (style.css) match them.
const COLORS = {
  recorded: '#2e7d32',
  activity: '#ffca28',
  offline: '#c62828',
  stalled: '#ef6c00',
  auth_failed: '#d84315',
  write_error: '#ad1457',
  spool_full: '#ad1457',
  service_stopped: '#6a1b9a',
  camera_removed: '#455a64',
  no_recording: '#616161',
  cursor: '#ffffff',
};

const el = {
  form: document.getElementById('controls'),
  camera: document.getElementById('camera'),
  day: document.getElementById('day'),
  jumpTime: document.getElementById('jump-time'),
  nearLive: document.getElementById('near-live'),
  speed: document.getElementById('speed'),
  error: document.getElementById('error'),
  timeline: document.getElementById('timeline'),
  scaleStart: document.getElementById('scale-start'),
  scaleEnd: document.getElementById('scale-end'),
  preview: document.getElementById('preview'),
  previewCanvas: document.getElementById('preview-canvas'),
  previewTime: document.getElementById('preview-time'),
  legend: document.getElementById('legend'),
  video: document.getElementById('video'),
  exportRow: document.getElementById('export-row'),
  markIn: document.getElementById('mark-in'),
  markOut: document.getElementById('mark-out'),
  range: document.getElementById('range'),
  exportLink: document.getElementById('export'),
  clock: document.getElementById('clock'),
  state: document.getElementById('state'),
};

let camera = '';
let dayStart = 0; // ms, midnight in Bucharest
let dayEnd = 0;
let timeline = null; // the API's answer for the day
let movie = null; // { from, to } in ms of the loaded video window
let nearLive = false;
let loads = 0; // only the latest timeline load may show
let dragging = false;
let hoverTimer = 0;
let stillVideo = null;
let marks = { from: null, to: null }; // ms: the range to export (administrators)

function showError(err) {
  bindText(el.error, err ? () => (err instanceof ApiError ? err.text() : T.playback.failed) : null);
  el.error.hidden = !err;
}

function setState(key) {
  bindText(el.state, key ? () => T.playback.states[key] : null);
}

/** todayInput is today's date in Bucharest as a date input's value. */
function todayInput() {
  return utcToBucharestInput(new Date()).slice(0, 10);
}

function setDay(value) {
  el.day.value = value;
  dayStart = bucharestToUTC(`${value}T00:00`).getTime();
  const next = new Date(dayStart + 26 * 3600 * 1000); // past midnight whatever the clock change
  dayEnd = bucharestToUTC(`${utcToBucharestInput(next).slice(0, 10)}T00:00`).getTime();
  el.timeline.dataset.from = String(dayStart); // for tests and tools: the scale in ms
  el.timeline.dataset.to = String(dayEnd);
  bindText(el.scaleStart, () => fmtDateTime(dayStart));
  bindText(el.scaleEnd, () => fmtDateTime(dayEnd));
}

async function loadTimeline() {
  if (!camera) return;
  const n = ++loads;
  const width = Math.max(100, Math.min(5000, Math.round(el.timeline.clientWidth || 1000)));
  el.timeline.width = width;
  const q = new URLSearchParams({ from: new Date(dayStart).toISOString(), to: new Date(dayEnd).toISOString(), buckets: String(width) });
  try {
    const tl = await api(`/api/v1/cameras/${encodeURIComponent(camera)}/timeline?${q}`);
    if (n !== loads) return;
    timeline = tl;
    showError(null);
  } catch (err) {
    if (n !== loads) return;
    timeline = null;
    showError(err);
  }
  draw();
}

function x(ms) {
  return ((ms - dayStart) / (dayEnd - dayStart)) * el.timeline.width;
}

function timeAt(clientX) {
  const r = el.timeline.getBoundingClientRect();
  const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
  return dayStart + f * (dayEnd - dayStart);
}

function draw() {
  const c = el.timeline;
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  c.dataset.recorded = timeline ? String(timeline.recorded.length) : '';
  if (timeline) {
    for (const gap of timeline.gaps) {
      g.fillStyle = COLORS[gap.cause] || COLORS.no_recording;
      const a = x(Date.parse(gap.start));
      g.fillRect(a, 0, Math.max(1, x(Date.parse(gap.end)) - a), c.height);
    }
    for (const r of timeline.recorded) {
      g.fillStyle = COLORS.recorded;
      const a = x(Date.parse(r.start));
      g.fillRect(a, 20, Math.max(1, x(Date.parse(r.end)) - a), c.height - 20);
    }
    // The activity track: bars over the recorded stretches.
    const from = Date.parse(timeline.from);
    const step = timeline.step_s * 1000;
    g.fillStyle = COLORS.activity;
    timeline.activity.forEach((v, i) => {
      if (v <= 0) return;
      const a = x(from + i * step);
      const w = Math.max(1, x(from + (i + 1) * step) - a);
      const hgt = Math.max(1, v * (c.height - 22));
      g.fillRect(a, c.height - hgt, w, hgt);
    });
  }
  const now = currentWall();
  if (now !== null && now >= dayStart && now < dayEnd) {
    g.fillStyle = COLORS.cursor;
    g.fillRect(x(now) - 1, 0, 2, c.height);
  }
}

/** currentWall is the wall-clock time of the picture shown (ms), or null. */
function currentWall() {
  if (!movie) return null;
  return movie.from + el.video.currentTime * 1000;
}

/** snap moves t out of a gap to the start of the next recorded stretch. */
function snap(t) {
  if (!timeline) return t;
  for (const r of timeline.recorded) {
    const s = Date.parse(r.start);
    const e = Date.parse(r.end);
    if (t < s) return s;
    if (t < e) return t;
  }
  return t;
}

/** play shows the footage at wall-clock time t (ms): in the loaded window by seeking, else in a new one. */
function play(t, { live = false } = {}) {
  nearLive = live;
  const now = Date.now();
  t = Math.min(snap(t), now - SETTLED_MS - 1000);
  if (movie && t >= movie.from && t < movie.to - 500 && !live) {
    el.video.currentTime = (t - movie.from) / 1000;
    el.video.play().catch(() => {});
    draw();
    return;
  }
  load(t, Math.min(t + FIRST_WINDOW_MS, now - SETTLED_MS));
}

function load(from, to) {
  if (to - from < 1000) return;
  movie = { from, to };
  const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  el.video.src = `/api/v1/cameras/${encodeURIComponent(camera)}/video.mp4?${q}`;
  el.video.playbackRate = Number(el.speed.value);
  setState('loading');
  el.video.play().catch(() => {});
}

function onEnded() {
  if (!movie) return;
  // Go on with what was recorded since: near-live keeps following the camera.
  const now = Date.now();
  if (movie.to < now - SETTLED_MS - 1000) load(movie.to, Math.min(movie.to + WINDOW_MS, now - SETTLED_MS));
  else setState('end');
}

/**
 * warmNext asks for the next window with HEAD once half of this one has played: the
 * server reads its fragment headers then, so the switch does not wait for them.
 */
function warmNext() {
  if (!movie || movie.warmed || el.video.currentTime * 1000 < (movie.to - movie.from) / 2) return;
  movie.warmed = true;
  const to = Math.min(movie.to + WINDOW_MS, Date.now() - SETTLED_MS);
  if (to - movie.to < 1000) return;
  const q = new URLSearchParams({ from: new Date(movie.to).toISOString(), to: new Date(to).toISOString() });
  fetch(`/api/v1/cameras/${encodeURIComponent(camera)}/video.mp4?${q}`, { method: 'HEAD', credentials: 'same-origin' }).catch(() => {});
}

function showClock() {
  warmNext();
  const w = currentWall();
  bindText(el.clock, w === null ? null : () => fmtDateTime(w));
  showRange();
  draw();
}

/** exportRange is the marked range, or else the window playing. */
function exportRange() {
  const from = marks.from ?? (movie && movie.from);
  const to = marks.to ?? (movie && movie.to);
  return from != null && to != null && to > from ? { from, to } : null;
}

/** showRange shows the range "Export this range" takes to the exports page. */
function showRange() {
  if (el.exportRow.hidden) return;
  const r = exportRange();
  bindText(el.range, r ? () => `${fmtDateTime(r.from)} – ${fmtTime(r.to)}` : null);
  const q = new URLSearchParams({ camera });
  if (r) {
    q.set('from', new Date(r.from).toISOString());
    q.set('to', new Date(r.to).toISOString());
  }
  el.exportLink.href = `/ui/exports.html?${q}`;
}

/** showPreview draws the keyframe at or before t (still.mp4) in the hover box. */
function showPreview(t, clientX) {
  const r = el.timeline.getBoundingClientRect();
  el.preview.style.left = `${Math.min(Math.max(0, clientX - r.left - 120), r.width - 244)}px`;
  bindText(el.previewTime, () => fmtTime(t));
  el.preview.hidden = false;
  clearTimeout(hoverTimer);
  hoverTimer = setTimeout(() => {
    if (!stillVideo) {
      stillVideo = document.createElement('video');
      stillVideo.muted = true;
      stillVideo.preload = 'auto';
      // The picture is there to draw once the video has seeked to it.
      stillVideo.addEventListener('loadeddata', () => {
        stillVideo.currentTime = 0;
      });
      stillVideo.addEventListener('seeked', () => {
        const g = el.previewCanvas.getContext('2d');
        g.drawImage(stillVideo, 0, 0, el.previewCanvas.width, el.previewCanvas.height);
        el.previewCanvas.dataset.drawn = stillVideo.dataset.at;
      });
    }
    stillVideo.dataset.at = String(t);
    const q = new URLSearchParams({ at: new Date(t).toISOString() });
    stillVideo.src = `/api/v1/cameras/${encodeURIComponent(camera)}/still.mp4?${q}`;
  }, PREVIEW_DELAY_MS);
}

function renderLegend() {
  el.legend.replaceChildren();
  const item = (cls, text) => {
    const li = document.createElement('li');
    li.append(h('span', `swatch ${cls}`), text);
    el.legend.append(li);
  };
  item('recorded', T.playback.legend.recorded);
  item('activity', T.playback.legend.activity);
  for (const cause of Object.keys(T.playback.causes)) item(cause, T.playback.causes[cause]);
}

async function init() {
  const me = await startPage('playback');
  if (!me) return;
  // Exports are for administrators; the exports page takes the range.
  el.exportRow.hidden = !hasRole(me, 'admin');
  const cams = grantedOnly(me, await api('/api/v1/cameras'));
  for (const c of cams) {
    const o = data('option', c.name || c.id);
    o.value = c.id;
    el.camera.append(o);
  }
  const params = new URLSearchParams(location.search);
  if (params.get('camera') && cams.some((c) => c.id === params.get('camera'))) el.camera.value = params.get('camera');
  camera = el.camera.value;
  setDay(params.get('day') || todayInput());
  renderLegend();
  onLangChange(renderLegend);
  if (!camera) {
    bindText(el.state, () => T.playback.noCameras);
  }

  el.camera.addEventListener('change', () => {
    camera = el.camera.value;
    movie = null;
    marks = { from: null, to: null };
    el.video.removeAttribute('src');
    el.video.load();
    loadTimeline();
  });
  el.day.addEventListener('change', () => {
    if (!el.day.value) return;
    setDay(el.day.value);
    loadTimeline();
  });
  el.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!el.jumpTime.value) {
      showError(new ApiError(400, '', 'time'));
      return;
    }
    const t = bucharestToUTC(`${el.day.value}T${el.jumpTime.value.length === 5 ? el.jumpTime.value + ':00' : el.jumpTime.value}`);
    if (t) play(t.getTime());
  });
  el.nearLive.addEventListener('click', () => {
    setDay(todayInput());
    loadTimeline();
    play(Date.now() - NEAR_LIVE_MS, { live: true });
  });
  el.markIn.addEventListener('click', () => {
    marks.from = currentWall();
    showRange();
  });
  el.markOut.addEventListener('click', () => {
    marks.to = currentWall();
    showRange();
  });
  el.speed.addEventListener('change', () => {
    el.video.playbackRate = Number(el.speed.value);
  });
  el.timeline.addEventListener('pointerdown', (ev) => {
    dragging = true;
    el.timeline.setPointerCapture(ev.pointerId);
  });
  el.timeline.addEventListener('pointermove', (ev) => {
    const t = timeAt(ev.clientX);
    showPreview(t, ev.clientX);
    if (dragging && movie && t >= movie.from && t < movie.to) el.video.currentTime = (t - movie.from) / 1000;
  });
  el.timeline.addEventListener('pointerup', (ev) => {
    dragging = false;
    play(timeAt(ev.clientX));
  });
  el.timeline.addEventListener('pointerleave', () => {
    clearTimeout(hoverTimer);
    el.preview.hidden = true;
  });
  el.video.addEventListener('timeupdate', showClock);
  el.video.addEventListener('seeked', showClock);
  el.video.addEventListener('playing', () => setState(nearLive ? 'nearLive' : 'playing'));
  el.video.addEventListener('pause', () => setState('paused'));
  el.video.addEventListener('ended', onEnded);
  el.video.addEventListener('error', () => setState('error'));
  window.addEventListener('resize', () => loadTimeline());
  setInterval(() => {
    if (dayEnd > Date.now() - REFRESH_MS) loadTimeline();
  }, REFRESH_MS);
  await loadTimeline();
  document.documentElement.dataset.ready = 'true';
}

init().catch(showError);
