// login.js — the sign-in form: POST /api/v1/login, then back to the page that sent
// the browser here (?next=), or the first page of the user's roles.

import { T } from './strings.js';
import { ApiError, bindText, homeFor, rolesOf, setupLangSwitch } from './app.js';

const form = document.getElementById('login');
const user = document.getElementById('username');
const pass = document.getElementById('password');
const submit = document.getElementById('submit');
const errBox = document.getElementById('error');
let waitUntil = 0; // Date.now() when a 429's Retry-After ends
let waitTimer = 0;

/** next is where to go after sign-in: only a path on this site, never the login page. */
function next() {
  const n = new URLSearchParams(location.search).get('next') || '';
  if (!n.startsWith('/') || n.startsWith('//') || n.startsWith('/\\') || n.startsWith('/ui/login.html')) return '';
  return n;
}

function showError(fn, field) {
  bindText(errBox, fn);
  errBox.hidden = !fn;
  for (const el of [user, pass]) el.removeAttribute('aria-invalid');
  if (field === 'username') user.setAttribute('aria-invalid', 'true');
  if (field === 'password') pass.setAttribute('aria-invalid', 'true');
}

/** startWait shows the 429 message counting down Retry-After, the button held until then. */
function startWait(seconds) {
  clearInterval(waitTimer);
  waitUntil = Date.now() + seconds * 1000;
  const left = () => Math.max(0, Math.ceil((waitUntil - Date.now()) / 1000));
  submit.disabled = true;
  showError(() => T.login.tooMany(left()));
  waitTimer = setInterval(() => {
    if (left() > 0) {
      errBox.textContent = T.login.tooMany(left());
      return;
    }
    clearInterval(waitTimer);
    submit.disabled = false;
    showError(null);
  }, 1000);
}

async function signIn(ev) {
  ev.preventDefault();
  if (!user.value || !pass.value) {
    showError(() => T.login.missing, !user.value ? 'username' : 'password');
    return;
  }
  submit.disabled = true;
  showError(null);
  let res;
  try {
    res = await fetch('/api/v1/login', {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: user.value, password: pass.value }),
    });
  } catch {
    submit.disabled = false;
    showError(() => T.common.network);
    return;
  }
  if (res.ok) {
    let dest = next();
    if (!dest) {
      try {
        const me = await (await fetch('/api/v1/me', { cache: 'no-store', credentials: 'same-origin' })).json();
        dest = homeFor(rolesOf(me));
      } catch {
        dest = '/';
      }
    }
    location.replace(dest);
    return;
  }
  let body = {};
  try {
    body = await res.json();
  } catch {
    // no JSON body: the status decides
  }
  pass.value = '';
  if (res.status === 429) {
    const s = parseInt(res.headers.get('Retry-After') || '', 10);
    if (s > 0) {
      startWait(s);
      return;
    }
    submit.disabled = false;
    showError(() => T.login.tooManySoon);
    return;
  }
  submit.disabled = false;
  if (res.status === 401) {
    showError(() => T.login.wrong);
    pass.focus();
    return;
  }
  const err = new ApiError(res.status, body.error, body.field);
  showError(() => err.text(), err.field);
}

setupLangSwitch();
form.addEventListener('submit', signIn);
document.documentElement.dataset.ready = 'true';
