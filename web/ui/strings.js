// strings.js — the active language's catalogue and the formats of dates and times.
//
// Every visible text comes from a catalogue (i18n/ro.js, i18n/en.js). Romanian is the
// default; the choice is kept in localStorage, and ?lang=en in the URL sets it. A
// change re-renders the page in place (onLangChange), so live video keeps playing.

import ro from './i18n/ro.js';
import en from './i18n/en.js';

/** catalogues by language code; the browser test compares their keys. */
export const catalogues = { ro, en };
/** LANGS are the languages, the default first. */
export const LANGS = ['ro', 'en'];
/** TIME_ZONE is where every date and time is shown: the sites are in Romania. */
export const TIME_ZONE = 'Europe/Bucharest';

const STORE_KEY = 'straja.lang';
const LOCALES = { ro: 'ro-RO', en: 'en-GB' };
const listeners = [];

let lang = initialLang();

/** T is the active language's catalogue (a live binding: it changes with setLang). */
export let T = catalogues[lang];

function initialLang() {
  const fromURL = new URLSearchParams(location.search).get('lang');
  if (LANGS.includes(fromURL)) {
    store(fromURL);
    return fromURL;
  }
  try {
    const v = localStorage.getItem(STORE_KEY);
    if (LANGS.includes(v)) return v;
  } catch {
    // storage disabled: the default language
  }
  return LANGS[0];
}

function store(l) {
  try {
    localStorage.setItem(STORE_KEY, l);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

/** currentLang is the active language code. */
export function currentLang() {
  return lang;
}

/** setLang switches the language, keeps the choice and re-renders (onLangChange). */
export function setLang(l) {
  if (!LANGS.includes(l) || l === lang) return;
  lang = l;
  T = catalogues[l];
  store(l);
  applyStatic();
  for (const fn of listeners) fn();
}

/** onLangChange registers fn to re-render the page's dynamic texts. */
export function onLangChange(fn) {
  listeners.push(fn);
}

/**
 * t looks a dotted key up in the active catalogue ('users.col.role'). A missing key
 * shows as ⟦key⟧, which the browser test looks for.
 */
export function t(key) {
  let v = T;
  for (const part of key.split('.')) {
    v = v == null ? undefined : v[part];
  }
  if (typeof v !== 'string') {
    console.error(`straja: no ${lang} text for ${key}`);
    return `⟦${key}⟧`;
  }
  return v;
}

/**
 * applyStatic fills the page's fixed texts from their keys: data-i18n (text),
 * data-i18n-title, data-i18n-placeholder and data-i18n-aria-label (attributes).
 */
export function applyStatic(root = document) {
  document.documentElement.lang = lang;
  const title = document.querySelector('meta[name="straja-title"]');
  if (title) document.title = t(title.content);
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [attr, data] of ATTRS) {
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attr, t(el.getAttribute(data)));
  }
}

const ATTRS = [['title', 'data-i18n-title'], ['placeholder', 'data-i18n-placeholder'], ['aria-label', 'data-i18n-aria-label']];

const formats = new Map();

function format(kind, opts) {
  const k = `${lang}/${kind}`;
  if (!formats.has(k)) formats.set(k, new Intl.DateTimeFormat(LOCALES[lang], { timeZone: TIME_ZONE, ...opts }));
  return formats.get(k);
}

/** fmtDateTime shows an instant (Date, ms or RFC 3339) as date and time in Bucharest. */
export function fmtDateTime(v) {
  return format('datetime', { dateStyle: 'short', timeStyle: 'medium' }).format(new Date(v));
}

/** fmtTime shows an instant as the wall-clock time (HH:MM:SS) in Bucharest. */
export function fmtTime(v) {
  return format('time', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(new Date(v));
}

/** fmtDate shows an instant as a date in Bucharest. */
export function fmtDate(v) {
  return format('date', { dateStyle: 'medium' }).format(new Date(v));
}

/**
 * bucharestToUTC turns a wall-clock time in Bucharest, as a datetime-local input gives
 * it ("2026-11-30T14:05"), into the instant it names. Around the autumn change the
 * earlier of the two instants is taken.
 */
export function bucharestToUTC(local) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  let guess = wall - offsetMs(wall);
  guess = wall - offsetMs(guess); // the offset at the instant itself, across a change
  return new Date(guess);
}

/** utcToBucharestInput is the datetime-local value ("YYYY-MM-DDTHH:MM:SS") of an instant. */
export function utcToBucharestInput(d) {
  const p = parts(d.getTime());
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}

const partsFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: TIME_ZONE, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

function parts(ms) {
  const out = {};
  for (const p of partsFormat.formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

// offsetMs is Bucharest's offset from UTC at instant ms (2 or 3 hours).
function offsetMs(ms) {
  const p = parts(ms);
  const asUTC = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUTC - Math.floor(ms / 1000) * 1000;
}

applyStatic();
