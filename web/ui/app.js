// app.js — what every page behind sign-in shares: API calls (any 401 goes to the
// login page), the header with the user menu and the language switch, and texts
// that follow the language.

import { T, t, setLang, currentLang, LANGS, onLangChange, applyStatic, utcToBucharestInput } from './strings.js';

/** LOGIN_PAGE is where a 401 sends the browser. */
export const LOGIN_PAGE = '/ui/login.html';

/**
 * PAGES are the pages of the header, with the roles that may use each: as the
 * server's role rights have it (web/auth: only guards watch live video). A user
 * holding several roles gets the pages of each.
 */
export const PAGES = [
  { id: 'live', href: '/', roles: ['guard'], key: 'live' },
  { id: 'users', href: '/ui/users.html', roles: ['itc'], key: 'users' },
  { id: 'cameras', href: '/ui/cameras.html', roles: ['itc'], key: 'cameras' },
  { id: 'health', href: '/ui/health.html', roles: ['itc'], key: 'health' },
  { id: 'alerts', href: '/ui/alerts.html', roles: ['itc'], key: 'alerts' },
  { id: 'retention', href: '/ui/retention.html', roles: ['itc'], key: 'retention' },
  { id: 'audit', href: '/ui/audit.html', roles: ['admin'], key: 'audit' },
  { id: 'exports', href: '/ui/exports.html', roles: ['admin'], key: 'exports' },
  { id: 'holds', href: '/ui/holds.html', roles: ['admin'], key: 'holds' },
  { id: 'verify', href: '/ui/verify.html', roles: ['admin'], key: 'verify' },
  // Last, so that each role's home page stays the first one above.
  { id: 'playback', href: '/ui/playback.html', roles: ['guard', 'admin'], key: 'playback' },
];

/** rolesOf is the roles of a /api/v1/me answer (a service without users has none). */
export function rolesOf(me) {
  if (!me) return [];
  if (Array.isArray(me.roles)) return me.roles;
  return me.role ? [me.role] : [];
}

/** hasRole reports whether the user of a /api/v1/me answer holds any of roles. */
export function hasRole(me, ...roles) {
  return rolesOf(me).some((r) => roles.includes(r));
}

/**
 * grantedOnly keeps the cameras of list granted to the user of a /api/v1/me answer,
 * for pages of footage: an itc user's camera list has every camera (itc sees every
 * camera's settings), while their video rights reach only the cameras granted.
 */
export function grantedOnly(me, list) {
  if (!hasRole(me, 'itc') || !Array.isArray(me.cameras)) return list;
  const granted = new Set(me.cameras);
  return list.filter((c) => granted.has(c.id));
}

/** homeFor is the first page any of roles may use. */
export function homeFor(roles) {
  const p = PAGES.find((pg) => pg.roles.some((r) => roles.includes(r)));
  return p ? p.href : '/';
}

/**
 * ApiError is a failed API call: status (0 when the service cannot be reached), the
 * API's own error text (server, may be '') and the field it names.
 */
export class ApiError extends Error {
  constructor(status, server, field) {
    super(server || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.server = server || '';
    this.field = field || '';
  }

  /** text is what the page shows: the API's words, or ours in the active language. */
  text() {
    if (this.server) return this.server;
    return this.status === 0 ? T.common.network : T.common.failed(this.status);
  }
}

/** goToLogin leaves for the login page, which comes back here after sign-in. */
export function goToLogin() {
  const here = location.pathname + location.search;
  location.replace(`${LOGIN_PAGE}?next=${encodeURIComponent(here)}`);
}

/**
 * api calls the JSON API: resolves with the parsed body (null for 204), rejects with
 * an ApiError. A 401 leaves for the login page and never settles, so no page shows
 * an error while it goes.
 */
export async function api(path, { method = 'GET', body } = {}) {
  const opts = { method, cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new ApiError(0);
  }
  if (res.status === 401) {
    goToLogin();
    return new Promise(() => {});
  }
  if (!res.ok) {
    let e = {};
    try {
      e = await res.json();
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiError(res.status, typeof e.error === 'string' ? e.error : '', typeof e.field === 'string' ? e.field : '');
  }
  if (res.status === 204) return null;
  return res.json();
}

const bound = new Map(); // element -> () => text

/**
 * bindText shows fn() in el now and again after every language change; a null fn
 * empties el. Use it for texts made from data (counts, names, errors).
 */
export function bindText(el, fn) {
  if (!fn) {
    bound.delete(el);
    el.textContent = '';
    return;
  }
  bound.set(el, fn);
  el.textContent = fn();
}

/** showStatus shows an outcome in box (fn gives its text in the active language); null hides it. */
export function showStatus(box, fn) {
  bindText(box, fn);
  box.hidden = !fn;
}

/**
 * showError shows err (an ApiError, or null to clear) in box and marks the field of
 * fields it names; fieldOf maps the API's field name to a key of fields.
 */
export function showError(box, err, fields = {}, fieldOf = (f) => f) {
  bindText(box, err ? () => err.text() : null);
  box.hidden = !err;
  for (const el of Object.values(fields)) el.removeAttribute('aria-invalid');
  const el = err && fields[fieldOf(err.field || '')];
  if (el) {
    el.setAttribute('aria-invalid', 'true');
    if (el.focus) el.focus();
  }
}

onLangChange(() => {
  for (const [el, fn] of bound) {
    if (el.isConnected) el.textContent = fn();
    else bound.delete(el);
  }
});

/**
 * startPage sets up the header of page (an id of PAGES) and resolves with the
 * signed-in user (GET /api/v1/me; {} on a service without sign-in), or null for a
 * user none of whose roles may use the page, who gets a notice instead.
 */
export async function startPage(page) {
  const roles = PAGES.find((p) => p.id === page).roles;
  mountHeader();
  setupLangSwitch();
  let me = null;
  try {
    me = await api('/api/v1/me');
  } catch (err) {
    if (err.status !== 404) throw err; // 404: a service without users
  }
  renderNav(page, me);
  if (me) {
    const box = document.getElementById('user');
    bindText(document.getElementById('user-name'), () => me.username);
    bindText(document.getElementById('user-role'), () => rolesOf(me).map((r) => T.roles[r] || r).join(', '));
    box.hidden = false;
    document.getElementById('logout').addEventListener('click', logout);
  }
  if (me && !hasRole(me, ...roles)) {
    const main = document.querySelector('main');
    main.replaceChildren();
    const p = document.createElement('p');
    p.className = 'notice';
    p.id = 'forbidden';
    bindText(p, () => T.common.forbidden);
    main.append(p);
    document.documentElement.dataset.ready = 'true';
    return null;
  }
  return me || {};
}

/**
 * mountHeader puts what every page's header shares around the page's own controls
 * (the live grid's layouts, say): the brand and the page links first, the user menu
 * and the language switch last. The pages' HTML holds only their own part.
 */
function mountHeader() {
  const header = document.querySelector('header.top');
  const brand = h('span', 'brand');
  brand.textContent = 'Straja';
  brand.translate = false;
  const nav = h('nav', 'nav');
  nav.id = 'nav';
  nav.dataset.i18nAriaLabel = 'nav.label';
  header.prepend(brand, nav);
  if (header.children.length === 2) header.append(h('span', 'spacer')); // nothing of the page's own
  const user = h('span', 'user');
  user.id = 'user';
  user.hidden = true;
  const who = h('span', 'who');
  who.dataset.i18nTitle = 'nav.user';
  const name = h('strong');
  name.id = 'user-name';
  name.translate = false;
  const role = h('span');
  role.id = 'user-role';
  who.append(name, ' ', role);
  const out = h('button', '', 'nav.logout');
  out.type = 'button';
  out.id = 'logout';
  user.append(who, out);
  const lang = h('button', 'lang');
  lang.type = 'button';
  lang.id = 'lang';
  header.append(user, lang);
  applyStatic(header);
}

function renderNav(page, me) {
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  for (const pg of PAGES) {
    if (me && !hasRole(me, ...pg.roles)) continue; // the API would refuse it anyway
    const a = document.createElement('a');
    a.href = pg.href;
    a.dataset.page = pg.id;
    if (pg.id === page) a.setAttribute('aria-current', 'page');
    bindText(a, () => T.nav[pg.key]);
    nav.append(a);
  }
}

async function logout() {
  try {
    await fetch('/api/v1/logout', { method: 'POST', credentials: 'same-origin' });
  } finally {
    location.replace(LOGIN_PAGE);
  }
}

/** setupLangSwitch makes #lang switch to the other language, named in its own words. */
export function setupLangSwitch() {
  const b = document.getElementById('lang');
  if (!b) return;
  const show = () => {
    b.textContent = T.lang.other;
    b.title = T.lang.otherTitle;
    b.lang = LANGS.find((l) => l !== currentLang());
  };
  show();
  onLangChange(show);
  b.addEventListener('click', () => setLang(LANGS.find((l) => l !== currentLang())));
}

/**
 * h makes an element with a class and, with key, the catalogue text of key: its
 * data-i18n attribute makes it follow the language (strings.applyStatic).
 */
export function h(tag, cls, key) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (key) {
    el.dataset.i18n = key;
    el.textContent = t(key);
  }
  return el;
}

/** data makes an element showing data (names, times): the same in every language. */
export function data(tag, text, cls) {
  const el = h(tag, cls);
  el.translate = false;
  el.textContent = text;
  return el;
}

/**
 * fillRangeFromURL takes ?camera=&from=&to= (RFC 3339), as the playback page links to
 * the exports and holds pages, into a camera select and two Bucharest time inputs;
 * without from, the range is the last spanMs.
 */
export function fillRangeFromURL(camera, from, to, spanMs) {
  const q = new URLSearchParams(location.search);
  const cam = q.get('camera');
  if (cam && [...camera.options].some((o) => o.value === cam)) camera.value = cam;
  for (const [name, input] of [['from', from], ['to', to]]) {
    const d = q.get(name) ? new Date(q.get(name)) : null;
    if (d && !isNaN(d)) input.value = utcToBucharestInput(d);
  }
  if (!from.value) {
    const now = Date.now();
    from.value = utcToBucharestInput(new Date(now - spanMs));
    to.value = utcToBucharestInput(new Date(now));
  }
}
