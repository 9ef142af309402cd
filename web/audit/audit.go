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
	"slices"
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
	b := make([]byte, 0, 128+len(e.Detail))
	b = append(b, "straja-audit-1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	for _, s := range []string{e.Actor, e.User, e.Action, e.Camera, e.Detail, string(e.PrevHash)} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	h := sha256.Sum256(b)
	return h[:]
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

	reqs    chan *request
	quit    chan struct{}
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
const (
	linger    = 2 * time.Millisecond
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
	l := &Log{st: st, store: opts.Store, log: log, reqs: make(chan *request, queueSize), quit: make(chan struct{}),
		stopped: make(chan struct{}), seq: seq, hash: hash}
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
	r := &request{ev: ev, done: make(chan error, 1)}
	select {
	case l.reqs <- r:
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
	case l.reqs <- &request{ev: ev}:
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
	batch := make([]*request, 0, maxBatch)
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
						l.commit(ctx, batch)
						batch = batch[:0]
					}
				default:
					l.commit(ctx, batch)
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
		l.commit(ctx, batch)
		// After a group nobody waits for (queued by requests), linger before taking
		// the next: requests then queue entries without waking the writer for each
		// one. A caller waiting in Record is never made to wait longer.
		if !slices.ContainsFunc(batch, func(r *request) bool { return r.done != nil }) {
			select {
			case <-time.After(linger):
			case <-l.quit:
			}
		}
	}
}

// commit chains and writes one batch; on failure the head stays where it was. When
// another writer (a command run beside the service) has moved the head, the batch is
// chained again after the new head and retried: the seq primary key makes the loser
// of a race fail rather than fork the chain.
func (l *Log) commit(ctx context.Context, batch []*request) {
	if len(batch) == 0 {
		return
	}
	now := time.Now().UTC()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		l.mu.Lock()
		seq, prev := l.seq, l.hash
		l.mu.Unlock()
		rows := chain(batch, seq, prev, now)
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

// chain makes the entries of batch after the entry (seq, prev).
func chain(batch []*request, seq int64, prev []byte, now time.Time) []Entry {
	rows := make([]Entry, len(batch))
	for i, r := range batch {
		detail := []byte("{}")
		if r.ev.Detail != nil {
			var err error
			if detail, err = json.Marshal(r.ev.Detail); err != nil {
				detail = []byte(`{"error":"detail not encodable"}`)
			}
		}
		seq++
		if prev == nil {
			prev = make([]byte, sha256.Size) // the first entry follows zeros
		}
		e := Entry{Seq: seq, Time: now, Actor: r.ev.Actor, User: r.ev.User, Action: r.ev.Action,
			Camera: r.ev.Camera, Detail: string(detail), PrevHash: prev}
		e.Hash = Hash(e)
		rows[i], prev = e, e.Hash
	}
	return rows
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
