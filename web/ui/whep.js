// whep.js — a small WHEP (RFC 9725) client: one receive-only video session.
//
// The server answers with all its ICE candidates in the SDP answer, so the client
// gathers its own candidates first (bounded by a timeout) and sends one offer; no
// trickle ICE is needed on a LAN.

/** WHEPError is a failed offer: status is the HTTP status (0 for a network error). */
export class WHEPError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.name = 'WHEPError';
    this.status = status;
  }
}

/**
 * WHEPClient plays one WHEP endpoint into a <video>.
 *
 *   const c = new WHEPClient('/api/v1/cameras/cam-1/whep', {onState: s => …});
 *   await c.start(video);     // throws WHEPError on an HTTP error
 *   const ms = await c.firstFrame();
 *   c.close();                // ends the server session (DELETE)
 */
export class WHEPClient {
  /**
   * @param {string} endpoint the WHEP URL of the camera
   * @param {{gatherTimeoutMs?: number, onState?: (state: string) => void}} opts
   *   onState receives the RTCPeerConnection's connectionState.
   */
  constructor(endpoint, opts = {}) {
    this.endpoint = endpoint;
    this.gatherTimeoutMs = Math.min(opts.gatherTimeoutMs ?? 2000, 2000);
    this.onState = opts.onState || (() => {});
    this.pc = null;
    this.location = null; // the session URL, once created
    this.startedAt = 0; // performance.now() when the peer connection was created
    this.firstFrameMs = null;
    // marks are milliseconds since startedAt of each step of the start (diagnostics).
    this.marks = {};
    this.closed = false;
    this.abort = new AbortController();
  }

  /** start negotiates the session and attaches the remote video to video. */
  async start(video) {
    this.startedAt = performance.now();
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      video.play().catch(() => {}); // autoplay of muted video is allowed; ignore aborts
    };
    pc.onconnectionstatechange = () => {
      this.mark(pc.connectionState);
      if (!this.closed) this.onState(pc.connectionState);
    };

    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, this.gatherTimeoutMs);
    this.mark('gathered');
    if (this.closed) throw new WHEPError(0, 'closed');

    let res;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
        signal: this.abort.signal,
        cache: 'no-store',
      });
    } catch (err) {
      throw new WHEPError(0, this.closed ? 'closed' : `network error: ${err.message}`);
    }
    const body = await res.text();
    this.mark('answered');
    if (res.status !== 201) throw new WHEPError(res.status, errorText(body));
    const loc = res.headers.get('Location');
    if (loc) this.location = new URL(loc, res.url).href;
    if (this.closed) {
      this.deleteSession();
      throw new WHEPError(0, 'closed');
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  }

  /**
   * firstFrame resolves with the milliseconds from the creation of the peer connection
   * to the first decoded frame (inbound-rtp framesDecoded > 0), or null if the client
   * closes first. It polls getStats, which reports decoding, not just packets.
   */
  firstFrame() {
    if (!this.firstFramePromise) {
      this.firstFramePromise = (async () => {
        while (!this.closed) {
          if ((await this.framesDecoded()) > 0) {
            this.firstFrameMs = performance.now() - this.startedAt;
            this.mark('decoded');
            return this.firstFrameMs;
          }
          await sleep(10);
        }
        return null;
      })();
    }
    return this.firstFramePromise;
  }

  /** framesDecoded is the video's decoded frame count so far (0 before any). */
  async framesDecoded() {
    if (!this.pc || this.closed) return 0;
    let n = 0;
    try {
      (await this.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0;
      });
    } catch {
      return 0; // closed meanwhile
    }
    return n;
  }

  mark(name) {
    if (!(name in this.marks)) this.marks[name] = Math.round(performance.now() - this.startedAt);
  }

  /** close ends the session; safe to call more than once and during start. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    if (this.pc) this.pc.close();
    this.deleteSession();
  }

  deleteSession() {
    if (!this.location) return;
    const url = this.location;
    this.location = null;
    // keepalive lets the DELETE outlive the page when it is being unloaded.
    fetch(url, { method: 'DELETE', keepalive: true }).catch(() => {});
  }
}

/** errorText is the message of an error answer: the "error" of Straja's JSON error body. */
function errorText(body) {
  try {
    const e = JSON.parse(body);
    if (e && typeof e.error === 'string') return e.error;
  } catch {
    // not JSON: show it as it is
  }
  return body.trim();
}

/** gathered resolves when ICE gathering completes or after timeoutMs, whichever first. */
function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
