// strings.js — every user-visible text of the live page, in one place so that a
// Romanian translation is one more object, not a hunt through the code.

const en = {
  title: 'Straja — live view',
  layout: 'Layout',
  layoutTitle: (n) => `${n} camera${n === 1 ? '' : 's'} per screen`,
  noCameras: 'No cameras are configured.',
  otherSite: 'Other cameras',
  summary: (total, live) => `${total} camera${total === 1 ? '' : 's'}, ${live} live`,
  serviceDown: 'Cannot reach the Straja service. Retrying…',
  loading: 'Loading cameras…',
  back: 'Press Esc or click to return to the grid',
  state: {
    live: 'Live',
    connecting: 'Connecting',
    waiting: 'Waiting for video',
    online: 'Online',
    offline: 'Offline',
    stalled: 'Stalled',
    unsupported: 'Not viewable live',
    retrying: 'Reconnecting',
  },
  msg: {
    connectingCamera: 'Connecting to the camera…',
    offline: 'Camera offline',
    offlineDetail: 'Straja keeps trying to reach it; the picture returns by itself.',
    stalled: 'The camera stopped sending video',
    cannotLive: 'This camera cannot be shown live in a browser',
    retrying: 'Live view interrupted. Reconnecting…',
    starting: 'Starting live view…',
    busy: 'Too many live views are open from this computer',
    busyDetail: 'Close some live views or other tabs; this one retries by itself.',
  },
};

/** T is the active language's strings. */
export const T = en;
