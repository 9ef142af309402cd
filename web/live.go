package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/webrtc"
)

// The browser UI is plain HTML/JS/CSS embedded in the binary: no build step, no CDN,
// so the page works on a LAN without Internet and matches the binary's API exactly.
//
//go:embed ui
var uiFiles embed.FS

// UIPrefix is where the UI's assets are served; the page itself is at /.
const UIPrefix = "/ui/"

// uiContentTypes are set explicitly: module scripts must be served as JavaScript, and
// the system MIME table differs between machines.
var uiContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// uiCSP allows only the page's own scripts, styles and API; video comes over WebRTC,
// which CSP does not restrict.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"frame-ancestors 'none'; form-action 'self'"

type uiAsset struct {
	body  []byte
	ctype string
	etag  string
}

// uiHandler serves the embedded UI from memory.
type uiHandler struct {
	assets map[string]uiAsset // by URL path
}

// newUI returns the handler of the browser UI: the live page at / and its assets
// under UIPrefix. Responses carry an ETag and "Cache-Control: no-cache", so browsers
// revalidate (a cheap 304) and never run a stale script after an upgrade.
func newUI() *uiHandler {
	h := &uiHandler{assets: map[string]uiAsset{}}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := uiContentTypes[path.Ext(p)]
		if !ok {
			return nil // not served
		}
		body, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets[UIPrefix+strings.TrimPrefix(p, "ui/")] = uiAsset{body: body, ctype: ctype,
			etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("embedded ui: %v", err)) // the embedded tree is fixed at build time
	}
	h.assets["/"] = h.assets[UIPrefix+"index.html"]
	return h
}

// serve serves one asset, honouring If-None-Match and HEAD; false means there is no
// asset at that path.
func (h *uiHandler) serve(w http.ResponseWriter, r *http.Request) bool {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		return false
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if a.ctype == uiContentTypes[".html"] {
		hd.Set("Content-Security-Policy", uiCSP)
		hd.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	return true
}

// LiveStreams is what live view needs from the recorder.
type LiveStreams interface {
	Camera(id string) (recorder.CameraStatus, bool)
	LiveStream(id string) (*streaming.Stream, bool)
}

// liveLookup returns the stream live view shows of a camera of rec: an unknown camera
// is webrtc.ErrUnknownCamera (404), an H.265 camera webrtc.ErrCodecNotSupported (409),
// an online camera that cannot be shown live (B-frames) a webrtc.LiveUnavailableError
// with the reason (409), and a camera that is not online webrtc.ErrUnavailable (503),
// so a viewer never gets the stale last GOP of a camera that has gone away.
func liveLookup(rec LiveStreams) func(id string) (*streaming.Stream, error) {
	return func(id string) (*streaming.Stream, error) {
		cs, ok := rec.Camera(id)
		if !ok {
			return nil, fmt.Errorf("camera %q: %w", id, webrtc.ErrUnknownCamera)
		}
		info := cameraInfo(cs)
		if info.LiveCodec == streaming.H265 {
			return nil, fmt.Errorf("camera %q: %w", id, webrtc.ErrCodecNotSupported)
		}
		if !info.Live && info.State == ingest.StateOnline {
			// Online but unplayable (B-frames): 409 with the reason, not "offline".
			return nil, fmt.Errorf("camera %q: %w", id, &webrtc.LiveUnavailableError{Reason: info.LiveReason})
		}
		if !info.Live {
			return nil, fmt.Errorf("camera %q: %s: %w", id, info.LiveReason, webrtc.ErrUnavailable)
		}
		st, ok := rec.LiveStream(id)
		if !ok {
			return nil, fmt.Errorf("camera %q: %w", id, webrtc.ErrUnknownCamera)
		}
		return st, nil
	}
}
