// live.js — the live grid: the cameras the signed-in user may see, grouped by site,
// one WHEP player per tile, reconnecting by itself after network blips, service
// restarts and camera outages.
//
// The camera list comes from the API (which leaves out cameras the user has no grant
// for), read again as soon as the event stream (GET /api/v1/events) says a camera
// changed state, and polled slowly besides; without the stream it is polled every few
// seconds. Each tile reconciles what the API says (online, offline, cannot be
// shown live) with the state of its player. The chosen layout (1, 4, 9 or 16 tiles)
// is one screen: tiles are sized from the window, more cameras go on further pages.

import { WHEPClient, WHEPError } from './whep.js';
import { T, fmtTime, onLangChange } from './strings.js';
import { api, bindText, goToLogin, grantedOnly, h, hasRole, startPage } from './app.js';

const API = '/api/v1/cameras';
const POLL_MS = 3000; // camera list refresh without the event stream
const POLL_EVENTS_MS = 30000; // with it: events say when to read the list again
const WATCH_MS = 2000; // player health check
const STALL_MS = 6000; // no new frame for this long while connected: start over
const DISCONNECT_GRACE_MS = 3000; // ICE "disconnected" often heals by itself
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const LAYOUTS = [1, 4, 9, 16];
const GAP_PX = 6; // between tiles; keep in step with .tiles in style.css
const STALE_MS = 3000; // a frame time this far behind the clock is shown as old

/**
 * strajaPlayers maps camera id to {pc, video, firstFrameMs, marks, restart()}: what
 * tests and diagnostics read; marks time each step of the current session's start.
 * pc is the current RTCPeerConnection (null between sessions); restart() starts a
 * new session and resolves with its time to first frame in ms.
 */
const players = new Map();
window.strajaPlayers = players;

const tiles = new Map(); // camera id -> Tile, for the cameras of the page shown
const grid = document.getElementById('grid');
const banner = document.getElementById('banner');
const summary = document.getElementById('summary');
let focused = null; // the Tile shown full size
let layout = 4; // tiles per screen
let page = 0; // index of the page of cameras shown
let cameras = []; // the latest camera list, in site order
let bannerOn = false;
let loaded = false; // the camera list came at least once
// A guard who is also itc gets every camera in the list (itc sees every camera's
// state), but may watch only those granted (grantedOnly).
let onlyGranted = false;

/** Tile is one camera's box: video, overlay and message, and its player lifecycle. */
class Tile {
  constructor(cam) {
    this.id = cam.id;
    this.cam = cam;
    this.client = null;
    this.attempt = 0; // failed attempts since the last good picture
    this.retryTimer = 0;
    this.error = null; // {kind: 'unsupported'|'forbidden'|'offline'|'busy'|'failed', text}
    this.lastFrames = 0;
    this.lastProgress = 0;
    this.disconnectedAt = 0;
    this.playing = false;
    this.frameTime = null; // wall clock (ms) of the frame on screen
    this.frameTimeSource = ''; // 'capture', 'receive' or 'arrival'
    this.frameSecond = -1; // the second shown, to touch the DOM once a second

    this.el = h('div', 'tile');
    this.el.dataset.camera = cam.id;
    this.el.tabIndex = 0;
    this.video = h('video');
    this.video.autoplay = true;
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.setAttribute('autoplay', '');
    this.video.setAttribute('muted', '');
    this.video.setAttribute('playsinline', '');
    this.name = h('span', 'name');
    this.site = h('span', 'site');
    this.badge = h('span', 'badge');
    this.time = h('span', 'frame-time');
    this.time.translate = false; // a time, the same in every language
    this.time.hidden = true;
    this.msg = h('div', 'message');
    this.msgTitle = h('strong');
    this.msgDetail = h('span', 'detail');
    this.msg.append(this.msgTitle, this.msgDetail);
    const info = h('div', 'info');
    info.translate = false; // camera and site names
    info.append(this.name, this.site);
    const overlay = h('div', 'overlay');
    overlay.append(info, this.badge);
    this.el.append(this.video, overlay, this.msg, this.time);
    this.el.addEventListener('click', () => toggleFocus(this));
    this.el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') toggleFocus(this);
    });
    this.watchFrames();

    const tile = this;
    this.watch = setInterval(() => this.check(), WATCH_MS);
    players.set(cam.id, {
      get pc() { return tile.client ? tile.client.pc : null; },
      video: this.video,
      get firstFrameMs() { return tile.client ? tile.client.firstFrameMs : null; },
      get marks() { return tile.client ? tile.client.marks : {}; },
      get frameTime() { return tile.frameTime; },
      get frameTimeSource() { return tile.frameTimeSource; },
      restart: () => tile.restart(),
    });
    this.update(cam);
  }

  /**
   * watchFrames keeps the wall-clock time of the frame on screen. With
   * requestVideoFrameCallback the browser says, per presented frame, when the camera
   * side captured it (captureTime, from the sender's RTCP reports) or when its last
   * packet arrived (receiveTime); without it, or without either time, the time a
   * frame is seen on screen stands in for its arrival time.
   */
  watchFrames() {
    const v = this.video;
    if (typeof v.requestVideoFrameCallback !== 'function') {
      // Fallback: timeupdate fires while frames are presented; their arrival time is
      // the best we know.
      v.addEventListener('timeupdate', () => this.setFrameTime(Date.now(), 'arrival'));
      return;
    }
    const onFrame = (_now, meta) => {
      if (meta.captureTime > 0) {
        this.setFrameTime(performance.timeOrigin + meta.captureTime, 'capture');
      } else if (meta.receiveTime > 0) {
        this.setFrameTime(performance.timeOrigin + meta.receiveTime, 'receive');
      } else {
        this.setFrameTime(Date.now(), 'arrival');
      }
      this.frameCB = v.requestVideoFrameCallback(onFrame);
    };
    this.frameCB = v.requestVideoFrameCallback(onFrame);
  }

  setFrameTime(ms, source) {
    this.frameTime = ms;
    const sourceChanged = source !== this.frameTimeSource;
    this.frameTimeSource = source;
    const sec = Math.floor(ms / 1000);
    if (sec === this.frameSecond && !sourceChanged) return;
    this.frameSecond = sec;
    this.renderTime();
  }

  renderTime() {
    if (this.frameTime === null || !this.playing) {
      this.time.hidden = true;
      return;
    }
    this.time.hidden = false;
    this.time.textContent = fmtTime(this.frameTime);
    this.time.title = this.frameTimeSource === 'arrival' ? T.live.frameTimeArrival : T.live.frameTime;
    this.time.classList.toggle('stale', Date.now() - this.frameTime > STALE_MS);
  }

  /** update applies the latest API view of the camera. */
  update(cam) {
    const prev = this.cam;
    this.cam = cam;
    this.name.textContent = cam.name || cam.id;
    this.site.textContent = cam.site_name || cam.site || '';

    if (!cam.live) {
      this.stop();
      this.error = null;
      this.render();
      return;
    }
    // The camera reconnected upstream between two polls: its timestamps start over, so
    // does the session, rather than risk a frozen picture.
    if (this.client && prev.reconnects !== cam.reconnects) {
      this.connect();
      return;
    }
    if (this.error && (this.error.kind === 'unsupported' || this.error.kind === 'forbidden') && prev.codec === cam.codec) {
      this.render(); // the server said no; wait for the camera to change
      return;
    }
    if (!this.client && !this.retryTimer) this.connect();
    this.render();
  }

  /** connect starts a new WHEP session. */
  async connect() {
    this.cancelRetry();
    this.stop();
    const client = new WHEPClient(`/api/v1/cameras/${encodeURIComponent(this.id)}/whep`, {
      onState: (s) => this.onPeerState(client, s),
    });
    this.client = client;
    this.playing = false;
    this.lastFrames = 0;
    this.lastProgress = performance.now();
    this.render();
    try {
      await client.start(this.video);
    } catch (err) {
      if (client !== this.client) return; // replaced or stopped meanwhile
      this.fail(err);
      return;
    }
    const ms = await client.firstFrame();
    if (client !== this.client || ms === null) return;
    this.playing = true;
    this.attempt = 0;
    this.error = null;
    this.lastProgress = performance.now();
    this.render();
  }

  /** restart starts over at once and resolves with the new time to first frame (ms). */
  async restart() {
    this.attempt = 0;
    await this.connect();
    return this.client ? this.client.firstFrame() : null;
  }

  onPeerState(client, state) {
    if (client !== this.client) return;
    if (state === 'failed' || state === 'closed') {
      this.fail(new WHEPError(0, `connection ${state}`));
    } else if (state === 'disconnected') {
      this.disconnectedAt = performance.now();
    } else if (state === 'connected') {
      this.disconnectedAt = 0;
    }
    this.render();
  }

  /** check is the watchdog: a session that is stuck or silent is started over. */
  async check() {
    this.renderTime(); // an old frame turns "stale" even when no new one comes
    const c = this.client;
    if (!c || !this.cam.live) return;
    const now = performance.now();
    if (this.disconnectedAt && now - this.disconnectedAt > DISCONNECT_GRACE_MS) {
      this.fail(new WHEPError(0, 'connection lost'));
      return;
    }
    const n = await c.framesDecoded();
    if (c !== this.client) return;
    if (n > this.lastFrames) {
      this.lastFrames = n;
      this.lastProgress = now;
    } else if (now - this.lastProgress > STALL_MS) {
      this.fail(new WHEPError(0, 'no video'));
    }
  }

  /** fail ends the current session and schedules the next attempt. */
  fail(err) {
    this.stop();
    const status = err instanceof WHEPError ? err.status : 0;
    if (status === 401) {
      goToLogin(); // the session ended (logout, timeout, user disabled)
      return;
    }
    if (status === 409 || status === 403) {
      // Not viewable live (H.265, B-frames) or not granted: retried when the camera
      // list shows a change.
      this.error = { kind: status === 409 ? 'unsupported' : 'forbidden', text: err.message };
      this.render();
      return;
    }
    if (status === 429) {
      this.error = { kind: 'busy', text: err.message };
    } else if (status === 503) {
      this.error = { kind: 'offline', text: err.message };
    } else {
      this.error = { kind: 'failed', text: err.message };
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      if (this.cam.live) this.connect();
    }, delay);
    this.render();
  }

  cancelRetry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
  }

  /** stop ends the current session, if any, without scheduling another. */
  stop() {
    if (this.client) {
      this.client.close();
      this.client = null;
    }
    this.playing = false;
    this.disconnectedAt = 0;
    this.video.srcObject = null;
    this.frameTime = null;
    this.renderTime();
  }

  /** destroy removes the tile for good (the camera left the list or the page). */
  destroy() {
    this.cancelRetry();
    this.stop();
    clearInterval(this.watch);
    if (this.frameCB && this.video.cancelVideoFrameCallback) this.video.cancelVideoFrameCallback(this.frameCB);
    players.delete(this.id);
    if (focused === this) toggleFocus(this);
    this.el.remove();
  }

  /** render shows the state badge and, when there is no picture, why. */
  render() {
    const cam = this.cam;
    const M = T.live.msg;
    let state, title = '', detail = '';
    if (!cam.live && cam.state !== 'online') {
      state = cam.state === 'stalled' ? 'stalled' : cam.state === 'connecting' ? 'connecting' : 'offline';
      title = state === 'connecting' ? M.connectingCamera : state === 'stalled' ? M.stalled : M.offline;
      detail = state === 'connecting' ? '' : M.offlineDetail;
    } else if (this.error && this.error.kind === 'forbidden') {
      state = 'forbidden';
      title = M.forbidden;
      detail = M.forbiddenDetail;
    } else if (!cam.live || (this.error && this.error.kind === 'unsupported')) {
      state = 'unsupported';
      title = M.cannotLive;
      // The server's reason (e.g. "H.265 …") names codecs; it has no translation.
      detail = cam.live_reason || (this.error && this.error.text) || '';
    } else if (this.playing) {
      state = 'live';
    } else if (this.retryTimer) {
      state = 'retrying';
      const kind = this.error && this.error.kind;
      title = kind === 'offline' ? M.offline : kind === 'busy' ? M.busy : M.retrying;
      detail = kind === 'offline' ? M.offlineDetail : kind === 'busy' ? M.busyDetail : '';
    } else if (this.client && this.client.pc && this.client.pc.connectionState === 'connected') {
      state = 'waiting';
    } else {
      state = 'connecting';
      title = M.starting;
    }
    this.el.dataset.state = state;
    this.badge.textContent = T.live.state[state];
    this.msgTitle.textContent = title;
    this.msgDetail.textContent = detail;
    this.msgDetail.translate = state !== 'unsupported';
    this.msg.hidden = !title;
    this.renderTime();
    if (tiles.get(this.id) === this) renderSummary(); // the count of live tiles
  }
}

/** toggleFocus shows tile full size, or returns to the grid. */
function toggleFocus(tile) {
  if (focused) focused.el.classList.remove('focused');
  if (focused === tile || !tile) {
    focused = null;
  } else {
    focused = tile;
    tile.el.classList.add('focused');
  }
  document.body.classList.toggle('has-focus', focused !== null);
}

/** bySite orders cams by site, sites in the order the API first names them. */
function bySite(cams) {
  const sites = new Map();
  for (const cam of cams) {
    const key = cam.site || '';
    if (!sites.has(key)) sites.set(key, []);
    sites.get(key).push(cam);
  }
  return [...sites.values()].flat();
}

function pageCount() {
  return Math.max(1, Math.ceil(cameras.length / layout));
}

/**
 * reconcile makes the grid match the page of the camera list shown: sections per
 * site, tiles in order. Tiles of cameras that left the page end their sessions.
 */
function reconcile() {
  page = Math.min(page, pageCount() - 1);
  const cams = cameras.slice(page * layout, (page + 1) * layout);
  const seen = new Set();
  const sites = new Map(); // site key -> {name, cams}
  for (const cam of cams) {
    const key = cam.site || '';
    if (!sites.has(key)) sites.set(key, { name: cam.site_name || cam.site || '', cams: [] });
    sites.get(key).cams.push(cam);
  }
  let i = 0;
  for (const [key, site] of sites) {
    let sec = grid.querySelector(`section[data-site="${CSS.escape(key)}"]`);
    if (!sec) {
      sec = h('section', 'site');
      sec.dataset.site = key;
      sec.append(h('h2'), h('div', 'tiles'));
    }
    if (grid.children[i] !== sec) grid.insertBefore(sec, grid.children[i] || null);
    i++;
    const h2 = sec.querySelector('h2');
    if (site.name) {
      bindText(h2, null);
      h2.textContent = site.name;
      h2.translate = false;
    } else {
      bindText(h2, () => T.live.otherSite);
      h2.translate = true;
    }
    const box = sec.querySelector('.tiles');
    site.cams.forEach((cam, j) => {
      seen.add(cam.id);
      let tile = tiles.get(cam.id);
      if (!tile) {
        tile = new Tile(cam);
        tiles.set(cam.id, tile);
      } else {
        tile.update(cam);
      }
      // Only move a tile that is out of place: moving a playing video may pause it.
      if (box.children[j] !== tile.el) box.insertBefore(tile.el, box.children[j] || null);
    });
    while (box.children.length > site.cams.length) box.lastElementChild.remove();
  }
  for (const [id, tile] of tiles) {
    if (!seen.has(id)) {
      tile.destroy();
      tiles.delete(id);
    }
  }
  while (grid.children.length > sites.size) grid.lastElementChild.remove();
  if (cameras.length === 0) {
    const p = h('p', 'empty');
    bindText(p, () => T.live.noCameras);
    grid.append(p);
  }
  renderSummary();
  renderPager();
  fit();
}

function renderSummary() {
  const live = [...tiles.values()].filter((t) => t.playing).length;
  bindText(summary, () => T.live.summary(cameras.length, live));
}

function renderPager() {
  const n = pageCount();
  document.getElementById('pager').hidden = n <= 1;
  bindText(document.getElementById('page-label'), () => T.live.page(page + 1, n));
  document.getElementById('prev-page').disabled = page === 0;
  document.getElementById('next-page').disabled = page >= n - 1;
}

function goPage(p) {
  const to = Math.max(0, Math.min(pageCount() - 1, p));
  if (to === page) return;
  page = to;
  reconcile();
}

/**
 * fit sizes the tiles so that the page's sections, headings and all, fill the
 * window below the header without scrolling: the height left for tiles is shared
 * by their rows, and no tile is wider than its column.
 */
function fit() {
  const cols = Math.sqrt(layout);
  const secs = [...grid.querySelectorAll('section.site')];
  if (secs.length === 0) return;
  const cs = getComputedStyle(grid);
  const padV = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
  const padH = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
  const availH = document.documentElement.clientHeight - grid.getBoundingClientRect().top - padV;
  const availW = grid.clientWidth - padH;
  let rows = 0;
  let fixed = 0; // headings, gaps between sections and rows
  secs.forEach((sec, i) => {
    const n = sec.querySelector('.tiles').children.length;
    const r = Math.max(1, Math.ceil(n / cols));
    rows += r;
    const head = sec.querySelector('h2');
    const hs = getComputedStyle(head);
    fixed += head.offsetHeight + parseFloat(hs.marginTop) + parseFloat(hs.marginBottom);
    fixed += (r - 1) * GAP_PX;
    if (i > 0) fixed += parseFloat(getComputedStyle(sec).marginTop);
  });
  const byHeight = ((availH - fixed) / rows) * (16 / 9);
  const byWidth = (availW - (cols - 1) * GAP_PX) / cols;
  const w = Math.max(80, Math.floor(Math.min(byHeight, byWidth)));
  document.documentElement.style.setProperty('--tile-w', `${w}px`);
}

/**
 * strajaEvents is the event stream's state, for tests and diagnostics: open, and how
 * many camera state changes it delivered.
 */
const liveEvents = { open: false, cameraStates: 0 };
window.strajaEvents = liveEvents;
let wake = null; // ends poll's wait early
let dirty = false; // an event came while the list was being read

/** listen opens the event stream; the browser reconnects it by itself. */
function listen() {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('open', () => {
    liveEvents.open = true;
  });
  es.addEventListener('error', () => {
    liveEvents.open = false; // poll at the fast pace until it is back
    if (wake) wake();
  });
  es.addEventListener('camera_state', () => {
    liveEvents.cameraStates++;
    dirty = true;
    if (wake) wake();
  });
}

/** poll refreshes the camera list for ever; failures show the banner and keep going. */
async function poll() {
  for (;;) {
    try {
      let list = await api(API);
      if (onlyGranted) list = grantedOnly(await api('/api/v1/me'), list); // grants may have changed
      cameras = bySite(list);
      loaded = true;
      reconcile();
      if (bannerOn) {
        // The service is back (restart, network blip): retry at once, not after backoff.
        for (const tile of tiles.values()) {
          if (tile.retryTimer && tile.cam.live) {
            tile.attempt = 0;
            tile.connect();
          }
        }
      }
      setBanner(false);
    } catch {
      setBanner(true);
    }
    if (dirty) {
      dirty = false;
      await new Promise((r) => setTimeout(r, 100)); // gather a burst of changes
      continue;
    }
    await new Promise((r) => {
      wake = r;
      setTimeout(r, liveEvents.open ? POLL_EVENTS_MS : POLL_MS);
    });
    wake = null;
    dirty = false;
  }
}

function setBanner(on) {
  if (on === bannerOn) return;
  bannerOn = on;
  bindText(banner, on ? () => T.common.serviceDown : null);
  banner.hidden = !on;
  fit();
}

/** setLayout sets how many tiles fill a screen (1, 4, 9 or 16). */
function setLayout(n) {
  if (!LAYOUTS.includes(n)) n = 4;
  const first = page * layout; // keep the first camera shown on screen
  layout = n;
  page = Math.floor(first / n);
  document.documentElement.style.setProperty('--cols', String(Math.sqrt(n)));
  for (const b of document.querySelectorAll('#layouts button')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.layout) === n));
  }
  try {
    localStorage.setItem('straja.layout', String(n));
  } catch {
    // storage may be disabled; the layout then lasts for this page only
  }
  if (loaded) reconcile();
}

function renderLang() {
  for (const b of document.querySelectorAll('#layouts button')) b.title = T.live.layoutTitle(Number(b.dataset.layout));
  for (const tile of tiles.values()) tile.render();
  fit();
}

async function init() {
  bindText(summary, () => T.live.loading);
  const bar = document.getElementById('layouts');
  for (const n of LAYOUTS) {
    const b = h('button');
    b.type = 'button';
    b.dataset.layout = String(n);
    b.textContent = String(n);
    b.addEventListener('click', () => setLayout(n));
    bar.append(b);
  }
  let stored = null;
  try {
    stored = localStorage.getItem('straja.layout');
  } catch {
    // ignore
  }
  const fromURL = new URLSearchParams(location.search).get('layout');
  layout = LAYOUTS.includes(Number(fromURL || stored)) ? Number(fromURL || stored) : 4;
  renderLang();
  onLangChange(renderLang);
  document.getElementById('prev-page').addEventListener('click', () => goPage(page - 1));
  document.getElementById('next-page').addEventListener('click', () => goPage(page + 1));

  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && focused) toggleFocus(null);
    if (ev.key === 'PageDown') goPage(page + 1);
    if (ev.key === 'PageUp') goPage(page - 1);
  });
  window.addEventListener('resize', fit);
  // End every session when the page goes away, so the server frees them at once.
  window.addEventListener('pagehide', () => {
    for (const tile of tiles.values()) {
      tile.cancelRetry();
      tile.stop();
    }
  });

  try {
    const me = await startPage('live');
    if (!me) return; // no role with live view
    onlyGranted = hasRole(me, 'itc');
  } catch {
    setBanner(true); // the service is down; poll keeps trying
  }
  setLayout(layout);
  listen();
  poll();
  document.documentElement.dataset.ready = 'true';
}

init();
