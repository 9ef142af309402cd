// verify.js — checks an export in the browser, with WebCrypto: a bundle.zip, or a
// clip with its manifest and signature. The manifest's signature (Ed25519, over its
// exact bytes) is checked with this installation's key of the manifest's key id
// (GET /api/v1/export-keys), then the clip's SHA-256 and size against the manifest.
// Nothing is uploaded: the files are read here.

import { T, fmtDateTime } from './strings.js';
import { ApiError, api, bindText, data, h, startPage } from './app.js';

const FORMAT = 'straja-export-1';
const form = document.getElementById('check');
const input = document.getElementById('v-files');
const errorBox = document.getElementById('error');
const resultBox = document.getElementById('result');

/** Failure is a check that did not pass; what is one of the CHECKS or 'files', 'manifest'. */
class Failure extends Error {
  constructor(what, text) {
    super(what);
    this.what = what;
    this.textFn = text;
  }
}

// The checks, in the order they are made.
const CHECKS = ['key', 'signature', 'clip'];

function showError(err) {
  bindText(errorBox, err ? () => (err instanceof ApiError ? err.text() : String(err.message || err)) : null);
  errorBox.hidden = !err;
}

/** readZip returns the entries of a zip (stored or deflated) as name -> Blob. */
async function readZip(blob) {
  const tailStart = Math.max(0, blob.size - 65557);
  const tail = new DataView(await blob.slice(tailStart).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Failure('files', () => T.verify.notZip);
  const count = tail.getUint16(eocd + 10, true);
  const cdSize = tail.getUint32(eocd + 12, true);
  const cdOff = tail.getUint32(eocd + 16, true);
  if (cdOff === 0xffffffff || cdSize === 0xffffffff) throw new Failure('files', () => T.verify.zip64);
  const cd = new DataView(await blob.slice(cdOff, cdOff + cdSize).arrayBuffer());
  const out = new Map();
  for (let p = 0, n = 0; n < count; n++) {
    if (cd.getUint32(p, true) !== 0x02014b50) throw new Failure('files', () => T.verify.notZip);
    const method = cd.getUint16(p + 10, true);
    const compSize = cd.getUint32(p + 20, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    const local = cd.getUint32(p + 42, true);
    const name = new TextDecoder().decode(new Uint8Array(cd.buffer, p + 46, nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    const lh = new DataView(await blob.slice(local, local + 30).arrayBuffer());
    const start = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
    let entry = blob.slice(start, start + compSize);
    if (method === 8) {
      entry = await new Response(entry.stream().pipeThrough(new DecompressionStream('deflate-raw'))).blob();
    } else if (method !== 0) {
      throw new Failure('files', () => T.verify.zipMethod(name));
    }
    out.set(name.split('/').pop(), entry);
  }
  return out;
}

/** collect finds the clip, manifest and signature among the chosen files (or in a zip). */
async function collect(files) {
  let byName = new Map();
  for (const f of files) byName.set(f.name, f);
  const zip = files.find((f) => f.name.toLowerCase().endsWith('.zip'));
  if (zip) byName = await readZip(zip);
  const pick = (test) => [...byName.entries()].find(([n]) => test(n.toLowerCase()));
  const clip = pick((n) => n.endsWith('.mp4'));
  const manifest = pick((n) => n.endsWith('.json'));
  const sig = pick((n) => n.endsWith('.sig'));
  for (const [part, v] of [['clip', clip], ['manifest', manifest], ['sig', sig]]) {
    if (!v) throw new Failure('files', () => T.verify.missing[part]);
  }
  return { clip: clip[1], manifest: manifest[1], sig: sig[1] };
}

function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** check runs the checks; it resolves with the manifest, or rejects with a Failure. */
async function check(parts, passed) {
  const manifestBytes = new Uint8Array(await parts.manifest.arrayBuffer());
  let m;
  try {
    m = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    throw new Failure('manifest', () => T.verify.notJSON);
  }
  if (!m || m.format !== FORMAT || !m.clip) throw new Failure('manifest', () => T.verify.notManifest);
  const keys = await api('/api/v1/export-keys');
  const trusted = keys.find((k) => k.id === m.key_id);
  if (!trusted) throw new Failure('key', () => T.verify.unknownKey(String(m.key_id)));
  const key = await crypto.subtle.importKey('spki', pemToDer(trusted.pem), { name: 'Ed25519' }, false, ['verify']);
  passed.push('key');
  const sig = new Uint8Array(await parts.sig.arrayBuffer());
  if (sig.length !== 64 || !(await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, manifestBytes))) {
    throw new Failure('signature', () => T.verify.badSignature(m.key_id));
  }
  passed.push('signature');
  const sum = hex(await crypto.subtle.digest('SHA-256', await parts.clip.arrayBuffer()));
  if (sum !== m.clip.sha256 || parts.clip.size !== m.clip.size) {
    throw new Failure('clip', () => T.verify.badClip(sum, m.clip.sha256));
  }
  passed.push('clip');
  return m;
}

function render(passed, failure, m) {
  const ok = !failure;
  resultBox.dataset.result = ok ? 'ok' : 'fail';
  resultBox.dataset.failed = failure ? failure.what : '';
  resultBox.classList.toggle('good', ok);
  resultBox.classList.toggle('bad', !ok);
  bindText(document.getElementById('verdict'), () => (ok ? T.verify.ok : T.verify.failed(T.verify.what[failure.what])));
  const list = document.getElementById('checks');
  list.replaceChildren(...CHECKS.map((c) => {
    const li = h('li');
    li.dataset.check = c;
    const state = passed.includes(c) ? 'pass' : failure && failure.what === c ? 'fail' : 'skip';
    li.dataset.state = state;
    bindText(li, () => `${T.verify.mark[state]} ${T.verify.checks[c]}`);
    return li;
  }));
  if (failure) {
    const li = h('li', 'why');
    bindText(li, failure.textFn);
    list.append(li);
  }
  const dl = document.getElementById('summary');
  dl.replaceChildren();
  if (m && ok) {
    const row = (key, value) => {
      const dt = h('dt');
      bindText(dt, () => T.verify.fields[key]);
      dl.append(dt, typeof value === 'function' ? (() => { const dd = data('dd', ''); bindText(dd, value); return dd; })() : data('dd', value));
    };
    row('camera', `${m.camera.name} (${m.camera.id})`);
    if (m.site && m.site.id) row('site', `${m.site.name} (${m.site.id})`);
    row('range', () => `${fmtDateTime(m.actual.from)} – ${fmtDateTime(m.actual.to)}`);
    row('created', () => fmtDateTime(m.created));
    row('user', m.user);
    row('reason', m.reason);
    row('sha256', m.clip.sha256);
    row('key', m.key_id);
  }
  resultBox.hidden = false;
}

async function submit(ev) {
  ev.preventDefault();
  showError(null);
  resultBox.hidden = true;
  const files = [...input.files];
  if (files.length === 0) {
    showError(new ApiError(400, T.verify.choose, 'files'));
    return;
  }
  const button = document.getElementById('v-submit');
  button.disabled = true;
  const passed = [];
  try {
    const parts = await collect(files);
    const m = await check(parts, passed);
    render(passed, null, m);
  } catch (err) {
    if (err instanceof Failure) render(passed, err, null);
    else showError(err);
  } finally {
    button.disabled = false;
  }
}

async function init() {
  if (!(await startPage('verify'))) return;
  form.addEventListener('submit', submit);
  document.documentElement.dataset.ready = 'true';
}

init().catch(showError);
