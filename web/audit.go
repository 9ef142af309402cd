package web

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web/audit"
)

// Auditor records who looked at what (*audit.Log). Every server has one: a look at
// footage that cannot be recorded is refused.
type Auditor interface {
	Record(ctx context.Context, ev audit.Event) error
	Enqueue(ev audit.Event) error
	List(ctx context.Context, q audit.Query, fn func(audit.Entry) error) error
}

var errAudit = errors.New("audit trail unavailable")

// Limits of one audit listing.
const (
	defaultAuditLimit = 1000
	maxAuditLimit     = 10000
	auditCursorPrefix = "a1:"
)

// note queues ev, with the caller as for record, without waiting for its commit: for
// the entries of every look at footage (listings, live views), on the request path.
// A trail that cannot take it (closed, far behind) refuses the request: errAudit.
func (s *Server) note(r *http.Request, ev audit.Event) error {
	if err := s.audit.Enqueue(s.fill(r, ev)); err != nil {
		s.log.Error("audit record failed", "request_id", requestID(r.Context()), "action", ev.Action, "err", err)
		return errorf(errAudit, "the audit trail cannot be written; try again later")
	}
	return nil
}

// fill sets the actor (client address) and user of ev from r.
func (s *Server) fill(r *http.Request, ev audit.Event) audit.Event {
	if ev.Actor == "" {
		ev.Actor = clientAddr(r)
	}
	if u := principal(r); u != nil && ev.User == "" {
		ev.User = u.Username
		if u.Via == "token" {
			ev.Actor += " token:" + u.TokenName
		}
	}
	return ev
}

// record appends ev with the client's address as actor and the signed-in user, and
// waits for its commit; a failure is returned as errAudit (503), the cause logged.
func (s *Server) record(r *http.Request, ev audit.Event) error {
	ev = s.fill(r, ev)
	if err := s.audit.Record(r.Context(), ev); err != nil {
		s.log.Error("audit record failed", "request_id", requestID(r.Context()), "action", ev.Action, "err", err)
		return errorf(errAudit, "the audit trail cannot be written; try again later")
	}
	return nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// LiveEnded records the end of a live session; wire it to webrtc.Options.OnSessionEnd.
func (s *Server) LiveEnded(e webrtc.SessionEnd) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	user, _ := s.liveOwners.LoadAndDelete(e.Session)
	username, _ := user.(string)
	err := s.audit.Record(ctx, audit.Event{Actor: e.Client, User: username, Action: audit.ActionLiveStop, Camera: e.Camera,
		Detail: map[string]any{"session": e.Session, "seconds": e.Watched.Round(time.Millisecond).Seconds(), "reason": e.Reason}})
	if err != nil {
		s.log.Error("audit record failed", "action", audit.ActionLiveStop, "camera", e.Camera, "err", err)
	}
}

// auditJSON is one entry as the API shows it.
type auditJSON struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	User     string          `json:"user"`
	Action   string          `json:"action"`
	Camera   string          `json:"camera,omitempty"`
	Detail   json.RawMessage `json:"detail"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// handleAudit answers one page of audit entries in seq order:
//
//	{"entries":[…], "next": "cursor" | null}
//
// or with format=csv the same page as a CSV attachment, the cursor in X-Next.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	q, csvOut, err := parseAuditQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := q.Limit
	q.Limit++
	var entries []audit.Entry
	if err := s.audit.List(r.Context(), q, func(e audit.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		s.writeError(w, r, err)
		return
	}
	next := ""
	if len(entries) > limit {
		entries = entries[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(auditCursorPrefix + strconv.FormatInt(entries[limit-1].Seq, 10)))
	}
	// The page is written as it is encoded, never whole in memory a second time: 32
	// pages of 10,000 at once took 185 MB more when each was built first, 80 MB now.
	w.Header().Set("Cache-Control", "no-store")
	if csvOut {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="straja-audit.csv"`)
		if next != "" {
			w.Header().Set("X-Next", next)
		}
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"seq", "time", "actor", "user", "action", "camera", "detail", "prev_hash", "hash"})
		for _, e := range entries {
			_ = cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.Format(time.RFC3339Nano), csvText(e.Actor),
				csvText(e.User), csvText(e.Action), csvText(e.Camera), csvText(e.Detail), hex.EncodeToString(e.PrevHash),
				hex.EncodeToString(e.Hash)})
		}
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString(`{"entries":[`)
	for i, e := range entries {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		b, err := json.Marshal(auditJSON{Seq: e.Seq, Time: e.Time, Actor: e.Actor, User: e.User, Action: e.Action,
			Camera: e.Camera, Detail: json.RawMessage(e.Detail), PrevHash: hex.EncodeToString(e.PrevHash),
			Hash: hex.EncodeToString(e.Hash)})
		if err != nil { // a detail that is not JSON: the trail was edited
			s.log.Error("audit entry not encoded", "seq", e.Seq, "err", err)
			return
		}
		_, _ = bw.Write(b)
	}
	_, _ = bw.WriteString(`],"next":`)
	nb, _ := json.Marshal(next)
	if next == "" {
		nb = []byte("null")
	}
	_, _ = bw.Write(nb)
	_, _ = bw.WriteString("}\n")
	_ = bw.Flush()
}

// csvText keeps a cell a spreadsheet would run as a formula (one starting with =, +,
// -, @, a tab or a carriage return: a failed sign-in as "-a1" is enough) as text, by
// a leading apostrophe. The JSON answer keeps the entries' exact text.
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// parseAuditQuery reads from, to (RFC 3339), user, camera, action, limit, next and
// format; a bad one is a *FieldError naming it.
func parseAuditQuery(r *http.Request) (q audit.Query, csvOut bool, err error) {
	v := r.URL.Query()
	q.Limit = defaultAuditLimit
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(f.name); s != "" {
			if *f.t, err = parseTime(s, f.name, time.Time{}); err != nil {
				return q, false, err
			}
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, false, &FieldError{"from", "must be before to"}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"user", &q.User}, {"camera", &q.Camera}, {"action", &q.Action}} {
		s := v.Get(f.name)
		if len(s) > 128 {
			return q, false, &FieldError{f.name, "longer than 128 bytes"}
		}
		*f.dst = s
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return q, false, &FieldError{"limit", fmt.Sprintf("must be a whole number from 1 to %d", maxAuditLimit)}
		}
		q.Limit = n
	}
	if s := v.Get("next"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(truncate(s, 64))
		rest, ok := strings.CutPrefix(string(b), auditCursorPrefix)
		seq, perr := strconv.ParseInt(rest, 10, 64)
		if err != nil || !ok || perr != nil || seq < 1 {
			return q, false, &FieldError{"next", "not a cursor from a previous page of the audit trail"}
		}
		q.After = seq
	}
	switch f := v.Get("format"); f {
	case "", "json":
	case "csv":
		csvOut = true
	default:
		return q, false, &FieldError{"format", fmt.Sprintf("must be json or csv, got %q", truncate(f, 32))}
	}
	return q, csvOut, nil
}
