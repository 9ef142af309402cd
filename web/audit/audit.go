// Package audit keeps Straja's tamper-evident audit trail: entries appended to the
// state database by one writer, each holding the SHA-256 of the previous one (a hash
// chain), and the chain head copied into the object store every few minutes and at
// shutdown. Rewriting an entry breaks the chain; recomputing the chain after an edit,
// or deleting the last entries, disagrees with a head in the store (Verify).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

// Actions of the trail.
const (
	ActionLogin        = "login"
	ActionLoginFailed  = "login.failed"
	ActionLockout      = "login.lockout"
	ActionLogout       = "logout"
	ActionUserAdd      = "user.add"
	ActionUserGrants   = "user.grants"
	ActionUserRoles    = "user.roles"
	ActionUserDisable  = "user.disable"
	ActionUserEnable   = "user.enable"
	ActionUserPassword = "user.password"
	ActionTokenCreate  = "token.create"
	ActionTokenRevoke  = "token.revoke"
	ActionLiveStart    = "live.start"
	ActionLiveStop     = "live.stop"
	ActionSegmentList  = "segments.list"
	// Playback: a movie played (once per movie, not per Range request), the
	// timeline looked at, hover previews (once per camera a few minutes).
	ActionPlayback         = "playback.video"
	ActionPlaybackTimeline = "playback.timeline"
	ActionPlaybackPreview  = "playback.preview"
	ActionStateBackup      = "state.backup"
	ActionStateRestore     = "state.restore"
	ActionServiceStart     = "service.start"
	ActionServiceStop      = "service.stop"
	// Retention: policy changes and runs (scheduled and emergency ones by the
	// service itself).
	ActionRetentionPolicySet    = "retention.policy.set"
	ActionRetentionPolicyDelete = "retention.policy.delete"
	ActionRetentionRun          = "retention.run"
	ActionHoldSet               = "hold.set"
	ActionHoldRelease           = "hold.release"
	ActorLocal                  = "local" // the service itself, or a command run on the server
	DefaultAnchorPeriod         = 5 * time.Minute
)

// Actions of the trail: cameras and sites changed at runtime, and probes of cameras.
const (
	ActionCameraAdd    = "camera.add"
	ActionCameraUpdate = "camera.update"
	ActionCameraDelete = "camera.delete"
	ActionCameraProbe  = "camera.probe"
	ActionSiteAdd      = "site.add"
	ActionSiteUpdate   = "site.update"
	ActionSiteDelete   = "site.delete"
)

// Actions of alerting.
const (
	ActionAlertRulePut    = "alert_rule.put"    // an alert rule added or changed through the API
	ActionAlertRuleDelete = "alert_rule.delete" // an alert rule deleted through the API
)

// Actions of clip export.
const (
	ActionExport         = "export"            // an export requested: camera, range, reason
	ActionExportKeys     = "export.key_rotate" // a new export signing key
	ActionExportDownload = "export.download"   // an export's clip or bundle downloaded
	ActionExportDelete   = "export.delete"     // an export's files deleted by an administrator, with a reason
	ActionExportExpire   = "export.expire"     // an export's files deleted by the service: export.keep passed
)

// Event is what a caller records; the Log adds seq, time and the chain.
type Event struct {
	Actor  string // client address, or ActorLocal
	User   string // empty until there are users
	Action string
	Camera string         // optional
	Detail map[string]any // range, reason, etc.; nil for none
}

// Entry is one stored entry; Query selects entries.
type (
	Entry = state.AuditRow
	Query = state.AuditQuery
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit trail closed")

// Hash is the SHA-256 of e's canonical encoding: a version tag, then every field,
// prev_hash included, each length-prefixed so no two entries encode alike.
func Hash(e Entry) []byte {
	h := sha256.Sum256(canonical(make([]byte, 0, 128+len(e.Detail)), e))
	return h[:]
}

// canonical appends what Hash hashes of e to b.
func canonical(b []byte, e Entry) []byte {
	b = append(b, "straja-audit-1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	for _, s := range [...]string{e.Actor, e.User, e.Action, e.Camera, e.Detail, string(e.PrevHash)} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// Options configure a Log.
type Options struct {
	// Store keeps the chain heads (under HeadPrefix).
	Store storage.Store
	// AnchorInterval is how often the head is written to Store (0: DefaultAnchorPeriod).
	AnchorInterval time.Duration
}

// Log appends to the audit trail. Safe for concurrent use; New starts its writer and
// its anchoring, Close stops and waits for both.
type Log struct {
	st    *state.State
	store storage.Store
	log   *slog.Logger

	reqs    chan request
	quit    chan struct{}
	urgent  chan struct{} // a Record waits: the writer ends its linger
	stopped chan struct{} // closed when the writer has returned
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once

	mu       sync.Mutex // guards the head and what was anchored
	seq      int64
	hash     []byte
	anchored int64
}

type request struct {
	ev   Event
	done chan error
}

// maxBatch bounds the entries of one transaction; queueSize the entries waiting.
// linger is how long queued entries may wait for the next group: every wake-up of the
// writer can take a request's core for its commit, and leaves that core's caches cold
// (2 ms gave p99 13-30 µs per request, 10 ms 8-18 µs, at 5,000 requests/s).
const (
	linger    = 10 * time.Millisecond
	maxBatch  = 512
	queueSize = 8 * maxBatch
)

// New opens the trail in st, continuing its chain.
func New(ctx context.Context, st *state.State, opts Options, log *slog.Logger) (*Log, error) {
	if opts.Store == nil {
		return nil, errors.New("audit: a store for the chain heads is required")
	}
	if opts.AnchorInterval <= 0 {
		opts.AnchorInterval = DefaultAnchorPeriod
	}
	seq, hash, err := st.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{st: st, store: opts.Store, log: log, reqs: make(chan request, queueSize), quit: make(chan struct{}),
		urgent: make(chan struct{}, 1), stopped: make(chan struct{}), seq: seq, hash: hash}
	if last, err := lastHead(ctx, opts.Store); err == nil {
		l.anchored = last
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.wg.Go(func() { l.write(rctx) })
	l.wg.Go(func() { l.anchorEvery(rctx, opts.AnchorInterval, seq, hash) })
	return l, nil
}

// Record appends ev and returns once it is committed. Concurrent records share a
// transaction (group commit), which is what makes the trail fast.
func (l *Log) Record(ctx context.Context, ev Event) error {
	r := request{ev: ev, done: make(chan error, 1)}
	select {
	case l.reqs <- r:
		select {
		case l.urgent <- struct{}{}:
		default: // the writer is told already
		}
	case <-l.quit:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("audit record %s: %w", ev.Action, ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-l.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// ErrBacklog is returned by Enqueue when the writer is that far behind: the caller
// refuses what it was about to do rather than do it unrecorded.
var ErrBacklog = errors.New("audit trail backlog full")

// Enqueue queues ev and returns at once, without waiting for the commit: what a
// request pays for its entry is a channel send, not an fsync. The entry is committed
// with the next group (within milliseconds); a failed commit is logged. It fails only
// when the trail is closed or its queue is full.
func (l *Log) Enqueue(ev Event) error {
	select {
	case <-l.quit:
		return ErrClosed
	default:
	}
	select {
	case l.reqs <- request{ev: ev}:
		return nil
	default:
		return fmt.Errorf("audit record %s: %w", ev.Action, ErrBacklog)
	}
}

// List calls fn for each entry q selects, in seq order.
func (l *Log) List(ctx context.Context, q Query, fn func(Entry) error) error {
	return l.st.AuditRows(ctx, q, fn)
}

// Head returns the last entry's seq and hash.
func (l *Log) Head() (int64, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.hash
}

// Close stops the writer once what was queued is written, then stores the head.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.quit) })
	<-l.stopped
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.Anchor(ctx)
}

func (l *Log) write(ctx context.Context) {
	defer close(l.stopped)
	// ctx ends only after the writer returned (Close); a context that can end costs
	// database/sql and the SQLite driver a goroutine per transaction and statement.
	ctx = context.WithoutCancel(ctx)
	var ch chainer
	batch := make([]request, 0, maxBatch)
	wait := time.NewTimer(linger)
	wait.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.quit:
			// Drain what was queued before the quit.
			for {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
					if len(batch) == maxBatch {
						l.commit(ctx, &ch, batch)
						batch = batch[:0]
					}
				default:
					l.commit(ctx, &ch, batch)
					return
				}
			}
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		l.commit(ctx, &ch, batch)
		// After a group nobody waits for (queued by requests), linger before taking
		// the next: requests then queue entries without waking the writer for each
		// one. A caller waiting in Record ends the linger.
		if !slices.ContainsFunc(batch, func(r request) bool { return r.done != nil }) {
			wait.Reset(linger)
			select {
			case <-wait.C:
			case <-l.urgent:
				wait.Stop()
			case <-l.quit:
				wait.Stop()
			}
		}
		clear(batch) // the events' details are garbage once committed
	}
}

// commit chains and writes one batch; on failure the head stays where it was. When
// another writer (a command run beside the service) has moved the head, the batch is
// chained again after the new head and retried: the seq primary key makes the loser
// of a race fail rather than fork the chain.
func (l *Log) commit(ctx context.Context, ch *chainer, batch []request) {
	if len(batch) == 0 {
		return
	}
	now := time.Now().UTC()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		l.mu.Lock()
		seq, prev := l.seq, l.hash
		l.mu.Unlock()
		rows := ch.chain(batch, seq, prev, now)
		if err = l.st.AppendAudit(ctx, rows); err == nil {
			last := rows[len(rows)-1]
			l.mu.Lock()
			l.seq, l.hash = last.Seq, last.Hash
			l.mu.Unlock()
			break
		}
		hseq, hash, herr := l.st.AuditHead(ctx)
		if herr != nil || hseq == seq {
			break // not a moved head: a real failure
		}
		l.mu.Lock()
		l.seq, l.hash = hseq, hash
		l.mu.Unlock()
	}
	if err != nil {
		l.log.Error("audit append failed", "entries", len(batch), "err", err)
	}
	for _, r := range batch {
		if r.done != nil {
			r.done <- err
		}
	}
}

// chainer makes the entries of batches, reusing its buffers from one batch to the
// next: per batch it allocates the details' text and the hashes, once each.
type chainer struct {
	rows   []Entry
	detail []byte // the batch's details, one after the other
	ends   []int  // where each entry's detail ends in detail
	buf    []byte // one entry's canonical encoding
	keys   []string
}

// chain makes the entries of batch after the entry (seq, prev). The rows are valid
// until the next call; their details and hashes stay valid.
func (c *chainer) chain(batch []request, seq int64, prev []byte, now time.Time) []Entry {
	c.detail, c.ends = c.detail[:0], c.ends[:0]
	for _, r := range batch {
		c.detail = c.appendDetail(c.detail, r.ev.Detail)
		c.ends = append(c.ends, len(c.detail))
	}
	details := string(c.detail)
	hashes := make([]byte, len(batch)*sha256.Size)
	if prev == nil {
		prev = make([]byte, sha256.Size) // the first entry follows zeros
	}
	c.rows = slices.Grow(c.rows[:0], len(batch))[:len(batch)]
	start := 0
	for i, r := range batch {
		seq++
		e := Entry{Seq: seq, Time: now, Actor: r.ev.Actor, User: r.ev.User, Action: r.ev.Action,
			Camera: r.ev.Camera, Detail: details[start:c.ends[i]], PrevHash: prev}
		start = c.ends[i]
		c.buf = canonical(c.buf[:0], e)
		h := sha256.Sum256(c.buf)
		e.Hash = hashes[i*sha256.Size : (i+1)*sha256.Size : (i+1)*sha256.Size]
		copy(e.Hash, h[:])
		c.rows[i], prev = e, e.Hash
	}
	return c.rows
}

// appendDetail appends d as JSON, the bytes json.Marshal gives: "{}" for none.
func (c *chainer) appendDetail(b []byte, d map[string]any) []byte {
	if d == nil {
		return append(b, "{}"...)
	}
	if out, ok := c.appendPlain(b, d); ok {
		return out
	}
	j, err := json.Marshal(d)
	if err != nil {
		j = []byte(`{"error":"detail not encodable"}`)
	}
	return append(b, j...)
}

// appendPlain encodes d without reflection when its keys and values are of the
// kinds details hold (plain strings, times, integers, floats, booleans): then the
// bytes are json.Marshal's (keys sorted, nothing to escape). Otherwise it reports
// false and json.Marshal encodes d.
func (c *chainer) appendPlain(b []byte, d map[string]any) ([]byte, bool) {
	c.keys = c.keys[:0]
	for k := range d {
		if !plain(k) {
			return b, false
		}
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	n0 := len(b)
	b = append(b, '{')
	for i, k := range c.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		var ok bool
		if b, ok = appendPlainValue(b, d[k]); !ok {
			return b[:n0], false
		}
	}
	return append(b, '}'), true
}

func appendPlainValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		if !plain(v) {
			return b, false
		}
		b = append(b, '"')
		b = append(b, v...)
		return append(b, '"'), true
	case time.Time:
		// time.Time's MarshalJSON: RFC 3339 with nanoseconds, refused outside
		// years 0-9999 and zone hours 0-23 (left to json.Marshal, which fails).
		n0 := len(b)
		b = append(b, '"')
		b = v.AppendFormat(b, time.RFC3339Nano)
		t := b[n0+1:]
		if len(t) < len("2006-01-02T15:04:05Z") || t[4] != '-' {
			return b[:n0], false
		}
		if t[len(t)-1] != 'Z' {
			z := t[len(t)-len("Z07:00"):]
			if z[0] != '+' && z[0] != '-' || z[1] > '1' && !(z[1] == '2' && z[2] <= '3') {
				return b[:n0], false
			}
		}
		return append(b, '"'), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case float64:
		// encoding/json's float64: like ES6, 'e' below 1e-6 and from 1e21, with
		// e-09 written e-9; NaN and infinities are not JSON.
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return b, false
		}
		f := byte('f')
		if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
			f = 'e'
		}
		b = strconv.AppendFloat(b, v, f, -1, 64)
		if n := len(b); f == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b, true
	}
	return b, false
}

// plain reports whether json.Marshal writes s as it is between quotes: printable
// ASCII but for the characters it escapes (", \, and <, > and & for HTML).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func (l *Log) anchorEvery(ctx context.Context, every time.Duration, seq int64, hash []byte) {
	// A head the last run could not store (store down at shutdown) is stored now.
	if seq > 0 {
		if err := l.anchorHead(ctx, seq, hash); err != nil && ctx.Err() == nil {
			l.log.Warn("audit head not stored; the next attempt follows", "err", err)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Anchor(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("audit head not stored; the next attempt follows", "err", err)
			}
		}
	}
}
