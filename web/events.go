package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/straja-nvr/straja/web/auth"
	"github.com/straja-nvr/straja/web/events"
)

// Event stream limits.
const (
	// eventsKeepAlive is how often an idle stream gets a comment line, so that proxies
	// keep it open and a gone client is noticed.
	eventsKeepAlive = 15 * time.Second
	// eventsMaxDuration ends a stream after this long; the browser reconnects, and
	// the new stream sees the user's current grants (or a 401 if signed out).
	eventsMaxDuration = 10 * time.Minute
	// eventsWriteTimeout bounds one write to a client that stopped reading.
	eventsWriteTimeout = 10 * time.Second
	// eventsRecheck is how often a stream looks its session or token up again: a
	// user signed out, disabled or stripped of grants stops receiving within it.
	eventsRecheck = 2 * time.Second
)

// mayReceive reports whether u may see ev: a camera's events need the right to view
// it; a user's own events (export progress) go to that user only; others go to the
// roles the event names.
func mayReceive(u *auth.Principal, ev events.Event) bool {
	switch {
	case ev.User != "":
		return u.Username == ev.User
	case ev.Camera != "":
		return u.May(auth.RightView, ev.Camera, ev.Site)
	case len(ev.Roles) > 0:
		return u.HasRole(ev.Roles...)
	}
	return true
}

// handleEvents streams Server-Sent Events (text/event-stream) the user may see:
// "event: <type>" and "data: <JSON event>", until the client goes, it falls behind
// (its buffer fills), or eventsMaxDuration passes.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if s.bus == nil {
		s.writeError(w, r, errorf(errNotFound, "live events are not running"))
		return
	}
	// The filter runs on the publisher's goroutine; the user is looked up again while
	// the stream lasts.
	var who atomic.Pointer[auth.Principal]
	who.Store(principal(r))
	sub, err := s.bus.Subscribe(func(ev events.Event) bool { return mayReceive(who.Load(), ev) })
	if errors.Is(err, events.ErrTooMany) {
		s.writeError(w, r, errorf(errBusy, "too many event streams open; try again later"))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The retry hint, and a first line so the client knows the stream is open.
	if !write([]byte("retry: 3000\n: open\n\n")) {
		return
	}
	keep := time.NewTicker(eventsKeepAlive)
	defer keep.Stop()
	end := time.NewTimer(eventsMaxDuration)
	defer end.Stop()
	recheck := time.NewTicker(eventsRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-recheck.C:
			u, err := s.caller(r)
			if err != nil {
				return // signed out, disabled or revoked (or the lookup failed): the client reconnects
			}
			who.Store(&u)
		case <-keep.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case ev, ok := <-sub.C():
			if !ok {
				return // fell behind: the client reconnects
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("event not encoded", "type", ev.Type, "err", err)
				continue
			}
			if !write(fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)) {
				return
			}
		}
	}
}
