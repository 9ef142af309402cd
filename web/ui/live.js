// live.js — the live grid: every camera grouped by site, one WHEP player per tile,
// reconnecting by itself after network blips, service restarts and camera outages.
//
// The camera list is polled from the API; each tile reconciles what the API says
// (online, offline, cannot be shown live) with the state of its player.

import { WHEPClient, WHEPError } from './whep.js';
import { T } from './strings.js';

const API = '/api/v1/cameras';
const POLL_MS = 3000; // camera list refresh
const WATCH_MS = 2000; // player health check
const STALL_MS = 6000; // no new frame for this long while connected: start over
const DISCONNECT_GRACE_MS = 3000; // ICE "disconnected" often heals by itself
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const LAYOUTS = [1, 4, 9, 16];

/**
 * strajaPlayers maps camera id to {pc, video, firstFrameMs, marks, restart()}: what
 * tests and diagnostics read; marks time each step of the current session's start.
 * pc is the current RTCPeerConnection (null between sessions); restart() starts a
 * new session and resolves with its time to first frame in ms.
 */
const players = new Map();
window.strajaPlayers = players;

const tiles = new Map(); // camera id -> Tile
const grid = document.getElementById('grid');
const banner = document.getElementById('banner');
const summary = document.getElementById('summary');
let focused = null; // the Tile shown full size

/** Tile is one camera's box: video, overlay and message, and its player lifecycle. */
class Tile {
  constructor(cam) {
    this.id = cam.id;
    this.cam = cam;
    this.client = null;
    this.attempt = 0; // failed attempts since the last good picture
    this.retryTimer = 0;
    this.error = null; // {kind: 'unsupported'|'offline'|'busy'|'failed', text}
    this.lastFrames = 0;
    this.lastProgress = 0;
    this.disconnectedAt = 0;
    this.playing = false;

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
    this.msg = h('div', 'message');
    this.msgTitle = h('strong');
    this.msgDetail = h('span', 'detail');
    this.msg.append(this.msgTitle, this.msgDetail);
    const info = h('div', 'info');
    info.append(this.name, this.site);
    const overlay = h('div', 'overlay');
    overlay.append(info, this.badge);
    this.el.append(this.video, overlay, this.msg);
    this.el.addEventListener('click', () => toggleFocus(this));
    this.el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') toggleFocus(this);
    });

    const tile = this;
    this.watch = setInterval(() => this.check(), WATCH_MS);
    players.set(cam.id, {
      get pc() { return tile.client ? tile.client.pc : null; },
      video: this.video,
      get firstFrameMs() { return tile.client ? tile.client.firstFrameMs : null; },
      get marks() { return tile.client ? tile.client.marks : {}; },
      restart: () => tile.restart(),
    });
    this.update(cam);
  }

  /** update applies the latest API view of the camera. */
  update(cam) {
    const prev = this.cam;
    this.cam = cam;
    this.name.textContent = cam.name || cam.id;
    this.site.textContent = cam.site_name || cam.site || '';
    this.el.title = `${cam.name || cam.id} — ${cam.site_name || cam.site || ''}`;

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
    if (this.error && this.error.kind === 'unsupported' && prev.codec === cam.codec) {
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
    if (status === 409) {
      this.error = { kind: 'unsupported', text: err.message };
      this.render();
      return; // retried when the camera list shows a change
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
  }

  /** destroy removes the tile for good (the camera left the configuration). */
  destroy() {
    this.cancelRetry();
    this.stop();
    clearInterval(this.watch);
    players.delete(this.id);
    if (focused === this) toggleFocus(this);
    this.el.remove();
  }

  /** render shows the state badge and, when there is no picture, why. */
  render() {
    const cam = this.cam;
    let state, title = '', detail = '';
    if (!cam.live && cam.state !== 'online') {
      state = cam.state === 'stalled' ? 'stalled' : cam.state === 'connecting' ? 'connecting' : 'offline';
      title = state === 'connecting' ? T.msg.connectingCamera : state === 'stalled' ? T.msg.stalled : T.msg.offline;
      detail = state === 'connecting' ? '' : T.msg.offlineDetail;
    } else if (!cam.live || (this.error && this.error.kind === 'unsupported')) {
      state = 'unsupported';
      title = T.msg.cannotLive;
      detail = cam.live_reason || (this.error && this.error.text) || '';
    } else if (this.playing) {
      state = 'live';
    } else if (this.retryTimer) {
      state = 'retrying';
      const kind = this.error && this.error.kind;
      title = kind === 'offline' ? T.msg.offline : kind === 'busy' ? T.msg.busy : T.msg.retrying;
      detail = kind === 'offline' ? T.msg.offlineDetail : kind === 'busy' ? T.msg.busyDetail : '';
    } else if (this.client && this.client.pc && this.client.pc.connectionState === 'connected') {
      state = 'waiting';
    } else {
      state = 'connecting';
      title = T.msg.starting;
    }
    this.el.dataset.state = state;
    this.badge.textContent = T.state[state];
    this.msgTitle.textContent = title;
    this.msgDetail.textContent = detail;
    this.msg.hidden = !title;
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

/** reconcile makes the grid match the camera list: sections per site, tiles in order. */
function reconcile(cams) {
  const seen = new Set();
  const sites = new Map(); // site key -> {name, cams}
  for (const cam of cams) {
    const key = cam.site || '';
    if (!sites.has(key)) sites.set(key, { name: cam.site_name || cam.site || T.otherSite, cams: [] });
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
    sec.querySelector('h2').textContent = site.name;
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
  }
  for (const [id, tile] of tiles) {
    if (!seen.has(id)) {
      tile.destroy();
      tiles.delete(id);
    }
  }
  while (grid.children.length > sites.size) grid.lastElementChild.remove();
  if (cams.length === 0) {
    const p = h('p', 'empty');
    p.textContent = T.noCameras;
    grid.append(p);
  }
  const live = cams.filter((c) => tiles.get(c.id)?.playing).length;
  summary.textContent = T.summary(cams.length, live);
}

/** poll refreshes the camera list for ever; failures show the banner and keep going. */
async function poll() {
  for (;;) {
    try {
      const res = await fetch(API, { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      reconcile(await res.json());
      if (!banner.hidden) {
        // The service is back (restart, network blip): retry at once, not after backoff.
        for (const tile of tiles.values()) {
          if (tile.retryTimer && tile.cam.live) {
            tile.attempt = 0;
            tile.connect();
          }
        }
      }
      banner.hidden = true;
    } catch {
      banner.textContent = T.serviceDown;
      banner.hidden = false;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** setLayout sets how many tiles fill a screen (1, 4, 9 or 16). */
function setLayout(n) {
  if (!LAYOUTS.includes(n)) n = 4;
  document.documentElement.style.setProperty('--cols', String(Math.sqrt(n)));
  for (const b of document.querySelectorAll('#layouts button')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.layout) === n));
  }
  try {
    localStorage.setItem('straja.layout', String(n));
  } catch {
    // storage may be disabled; the layout then lasts for this page only
  }
}

function h(tag, cls) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  return el;
}

function init() {
  document.title = T.title;
  document.getElementById('title').textContent = T.title;
  document.getElementById('layout-label').textContent = T.layout;
  document.getElementById('back-hint').textContent = T.back;
  summary.textContent = T.loading;
  const bar = document.getElementById('layouts');
  for (const n of LAYOUTS) {
    const b = h('button');
    b.type = 'button';
    b.dataset.layout = String(n);
    b.textContent = String(n);
    b.title = T.layoutTitle(n);
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
  setLayout(Number(fromURL || stored || 4));

  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && focused) toggleFocus(null);
  });
  // End every session when the page goes away, so the server frees them at once.
  window.addEventListener('pagehide', () => {
    for (const tile of tiles.values()) {
      tile.cancelRetry();
      tile.stop();
    }
  });
  poll();
}

init();
