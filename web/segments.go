package web

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/web/audit"
)

// Limits of one segments listing.
const (
	// maxSegmentRange bounds from..to so that one listing stays about one month.
	maxSegmentRange = 31 * 24 * time.Hour
	// defaultSegmentLimit and maxSegmentLimit bound the segments of one page.
	defaultSegmentLimit = 1000
	maxSegmentLimit     = 10000
	// cursorVersion starts every next cursor, so its format can change.
	cursorVersion = "1"
)

// segmentJSON is one catalogued segment as the API shows it.
type segmentJSON struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration_s"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
}

// segmentsHead is the part of the answer written before the segments.
type segmentsHead struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Limit  int       `json:"limit"`
}

// handleSegments answers one page of a camera's segments overlapping [from, to):
//
//	{"camera":…, "from":…, "to":…, "limit":…, "segments":[…], "next": "cursor" | null}
//
// A non-null next is passed back as ?next= (with the same from and to) for the
// following page. Segments are encoded as the catalog yields them, so a page
// costs the same memory at any size of catalog.
func (s *Server) handleSegments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraKnown(r.Context(), id) {
		s.writeError(w, r, errorf(errNotFound, "camera %q not found", id))
		return
	}
	now := time.Now()
	q, err := parseSegmentQuery(r, id, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A guard may look back only so far: older footage is left out, not refused.
	if earliest := principal(r).EarliestPlayback(now); q.From.Before(earliest) {
		q.From = earliest
		if !q.To.After(q.From) {
			q.To = q.From
		}
	}
	if err := s.note(r, audit.Event{Action: audit.ActionSegmentList, Camera: id,
		Detail: map[string]any{"from": q.From, "to": q.To}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page

	var (
		n       int
		more    bool
		last    string
		started bool
		buf     []byte
	)
	start := func() {
		started = true
		head, _ := json.Marshal(segmentsHead{Camera: id, From: q.From, To: q.To, Limit: limit})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(head[:len(head)-1], `,"segments":[`...))
	}
	err = s.segments.ListSegments(r.Context(), q, func(sg storage.Segment) error {
		if n == limit {
			more = true // the extra row
			return nil
		}
		if !started {
			start()
		}
		buf = buf[:0]
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = appendSegment(buf, sg)
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write segments: %w: %w", errClientGone, err)
		}
		n++
		last = sg.Key
		return nil
	})
	if err != nil && !started {
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		// The status is sent: cut the response short so the client cannot take a
		// partial page for a whole one.
		lvl := s.log.Warn
		if errors.Is(err, errClientGone) {
			lvl = s.log.Debug
		}
		lvl("segments listing failed after the first row", "request_id", requestID(r.Context()),
			"camera", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !started {
		start()
	}
	next := []byte("null")
	if more {
		next, _ = json.Marshal(encodeCursor(last))
	}
	_, _ = w.Write(append(append([]byte(`],"next":`), next...), "}\n"...))
}

// appendSegment appends sg as JSON (a segmentJSON) without reflection.
func appendSegment(b []byte, sg storage.Segment) []byte {
	b = append(b, `{"start":"`...)
	b = sg.Start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","end":"`...)
	b = sg.End().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","duration_s":`...)
	b = strconv.AppendFloat(b, sg.Duration.Seconds(), 'f', -1, 64)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, sg.Size, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sg.SHA256[:])
	return append(b, `"}`...)
}

// parseSegmentQuery reads from and to (RFC 3339; to defaults to now, from to one hour
// before to), limit and next; a bad one is a *FieldError naming it.
func parseSegmentQuery(r *http.Request, camera string, now time.Time) (storage.SegmentQuery, error) {
	v := r.URL.Query()
	q := storage.SegmentQuery{Camera: camera, Limit: defaultSegmentLimit}
	var err error
	if q.From, q.To, err = parseRange(r, now, time.Hour, maxSegmentRange); err != nil {
		return q, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSegmentLimit {
			return q, &FieldError{"limit", fmt.Sprintf("must be a whole number from 1 to %d", maxSegmentLimit)}
		}
		q.Limit = n
	}
	if s := v.Get("next"); s != "" {
		key, err := decodeCursor(s, camera)
		if err != nil {
			return q, &FieldError{"next", "not a cursor from a previous page of this camera's segments"}
		}
		q.After = key
	}
	return q, nil
}

// A cursor is opaque to clients: base64url of a version and the key of the last
// segment sent, which gives the (start, key) position to continue after.
func encodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + key))
}

var (
	errCursor     = errors.New("bad cursor")
	errClientGone = errors.New("client stopped reading")
)

func decodeCursor(s, camera string) (string, error) {
	if len(s) > 512 {
		return "", errCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", errCursor
	}
	key, ok := strings.CutPrefix(string(b), cursorVersion)
	if !ok {
		return "", errCursor
	}
	if k, err := storage.ParseSegmentKey(key); err != nil || k.Camera != camera {
		return "", errCursor
	}
	return key, nil
}

// errFound stops hasFootage's listing at the first segment.
var errFound = errors.New("found")

// cameraKnown reports whether camera id runs, or was deleted at runtime and still has
// footage: that stays listed and playable until retention deletes it.
func (s *Server) cameraKnown(ctx context.Context, id string) bool {
	if _, ok := s.cams.Camera(id); ok {
		return true
	}
	return s.hasFootage(ctx, id)
}

// hasFootage reports whether a camera that no longer runs (deleted at runtime) has
// footage in the catalog: it stays listed until retention deletes it.
func (s *Server) hasFootage(ctx context.Context, camera string) bool {
	err := s.segments.ListSegments(ctx, storage.SegmentQuery{Camera: camera, From: time.Unix(0, 0),
		To: time.Now().AddDate(100, 0, 0), Limit: 1}, func(storage.Segment) error { return errFound })
	return errors.Is(err, errFound)
}
