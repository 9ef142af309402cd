// Package gaps keeps the gap ledger: every hole in a camera's recording, written to
// the state database as it happens, with when it started, when it ended and why. A
// heartbeat row, updated every few seconds, lets the next start record the time the
// service itself was down, after a crash as after an orderly stop.
package gaps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/storage/state"
)

// Cause says why a camera's recording has a hole.
type Cause string

// Gap causes.
const (
	CauseOffline        Cause = "offline"         // the camera could not be reached or its session was lost
	CauseStalled        Cause = "stalled"         // the session was up but no decodable video arrived
	CauseAuthFailed     Cause = "auth_failed"     // the camera refused the credentials
	CauseWriteError     Cause = "write_error"     // the spool disk failed writes
	CauseSpoolFull      Cause = "spool_full"      // the spool reached its cap
	CauseServiceStopped Cause = "service_stopped" // Straja itself was not running
	CauseCameraRemoved  Cause = "camera_removed"  // the camera was removed from the configuration
)

// Gap is a hole in one camera's recording. End is zero while it lasts.
type Gap struct {
	Camera     string
	Start, End time.Time
	Cause      Cause
}

// Store is what the ledger needs of the state database; *state.State has it. Safe
// for concurrent use; honours ctx.
type Store interface {
	OpenGap(ctx context.Context, camera, cause string, start time.Time) (int64, error)
	CloseGap(ctx context.Context, id int64, end time.Time) error
	OpenGaps(ctx context.Context) ([]state.Gap, error)
	Gaps(ctx context.Context, camera string, from, to time.Time, limit int) ([]state.Gap, error)
	Heartbeat(ctx context.Context, t time.Time, clean bool) error
	LastHeartbeat(ctx context.Context) (time.Time, bool, error)
}

var _ Store = (*state.State)(nil)

// HeartbeatInterval is how often the ledger notes that the service runs: a crash's
// downtime is recorded from at most this long before it happened.
const HeartbeatInterval = 5 * time.Second

// queueSize bounds the events waiting to be written; far more than the state changes
// of a site's cameras in the time one write takes.
const queueSize = 4096

// MaxGaps bounds one Gaps answer.
const MaxGaps = 10000

// Ledger records gaps. Observe is safe for concurrent use; Start, then Run, once.
type Ledger struct {
	st       Store
	log      *slog.Logger
	queue    chan recorder.Event
	lost     atomic.Uint64 // events dropped on a full queue
	applied  atomic.Uint64 // events written (or failed to be)
	interval time.Duration

	mu   sync.Mutex // guards open; held only by Start and Run's writes
	open map[string]openGap
}

type openGap struct {
	id    int64
	cause Cause
}

// New returns a ledger writing to st.
func New(st Store, log *slog.Logger) *Ledger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ledger{st: st, log: log, queue: make(chan recorder.Event, queueSize), interval: HeartbeatInterval,
		open: map[string]openGap{}}
}

// Observe queues a recorder event for Run to write; it never blocks (it is
// recorder.Options.Events). On a full queue the event is dropped and logged. A nil
// ledger drops every event.
func (l *Ledger) Observe(ev recorder.Event) {
	if l == nil {
		return
	}
	select {
	case l.queue <- ev:
	default:
		if l.lost.Add(1) == 1 {
			l.log.Error("gap ledger queue full: camera events dropped")
		}
	}
}

// Start records, for each recording camera, the time the service was down since its
// last heartbeat as a "service_stopped" gap that ends when the camera records again,
// and ends there the gaps the last run left open. Call it before the cameras start.
func (l *Ledger) Start(ctx context.Context, cameras []string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	beat, _, err := l.st.LastHeartbeat(ctx)
	if err != nil {
		return err
	}
	open, err := l.st.OpenGaps(ctx)
	if err != nil {
		return err
	}
	for _, g := range open {
		if Cause(g.Cause) == CauseCameraRemoved || beat.IsZero() {
			l.open[g.Camera] = openGap{g.ID, Cause(g.Cause)}
			continue
		}
		if err := l.st.CloseGap(ctx, g.ID, beat); err != nil {
			return err
		}
	}
	if !beat.IsZero() {
		for _, cam := range cameras {
			if _, ok := l.open[cam]; ok {
				continue
			}
			id, err := l.st.OpenGap(ctx, cam, string(CauseServiceStopped), beat)
			if err != nil {
				return err
			}
			l.open[cam] = openGap{id, CauseServiceStopped}
		}
		l.log.Info("service was down; recorded as a gap of each camera", "since", beat, "for", now.Sub(beat).Round(time.Second))
	}
	return l.st.Heartbeat(ctx, now, false)
}

// Run writes queued events and the heartbeat until ctx is done, then writes what is
// still queued and a last heartbeat marked clean.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case ev := <-l.queue:
			l.apply(ctx, ev)
		case now := <-t.C:
			if err := l.st.Heartbeat(ctx, now, false); err != nil && ctx.Err() == nil {
				l.log.Warn("heartbeat not written", "err", err)
			}
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for {
				select {
				case ev := <-l.queue:
					l.apply(wctx, ev)
					continue
				default:
				}
				break
			}
			if err := l.st.Heartbeat(wctx, time.Now(), true); err != nil {
				l.log.Warn("last heartbeat not written", "err", err)
			}
			return
		}
	}
}

// apply writes what ev means for its camera's open gap.
func (l *Ledger) apply(ctx context.Context, ev recorder.Event) {
	if err := l.write(ctx, ev); err != nil {
		l.log.Error("gap ledger not written", "camera", ev.Camera, "err", err)
	}
	l.applied.Add(1)
}

func (l *Ledger) write(ctx context.Context, ev recorder.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, isOpen := l.open[ev.Camera]
	switch {
	case ev.Removed:
		if isOpen && cur.cause == CauseCameraRemoved {
			return nil
		}
		if isOpen {
			if err := l.close(ctx, ev.Camera, cur, ev.At); err != nil {
				return err
			}
		}
		if !ev.Record {
			return nil
		}
		return l.start(ctx, ev.Camera, CauseCameraRemoved, ev.At)
	case !ev.Record:
		return nil
	case ev.Recording == recorder.RecordingResumed:
		if isOpen && (cur.cause == CauseSpoolFull || cur.cause == CauseWriteError) {
			return l.close(ctx, ev.Camera, cur, ev.At)
		}
	case ev.Recording != "":
		if !isOpen {
			return l.start(ctx, ev.Camera, Cause(ev.Recording), ev.At)
		}
	case ev.State == ingest.StateOnline:
		if isOpen && cur.cause != CauseSpoolFull && cur.cause != CauseWriteError {
			return l.close(ctx, ev.Camera, cur, ev.At)
		}
	case ev.State == ingest.StateConnecting || ev.Reason == ingest.ReasonStopped:
		// A camera starting, or the service stopping it: the heartbeat covers the latter.
	default: // offline or stalled
		if isOpen {
			return nil
		}
		start := ev.At
		if !ev.LastFrame.IsZero() && ev.LastFrame.Before(start) {
			start = ev.LastFrame
		}
		return l.start(ctx, ev.Camera, causeOf(ev), start)
	}
	return nil
}

func causeOf(ev recorder.Event) Cause {
	switch {
	case ev.Reason == ingest.ReasonAuthFailed:
		return CauseAuthFailed
	case ev.State == ingest.StateStalled || ev.Reason == ingest.ReasonStalled:
		return CauseStalled
	}
	return CauseOffline
}

// start and close need l.mu held.
func (l *Ledger) start(ctx context.Context, camera string, cause Cause, at time.Time) error {
	id, err := l.st.OpenGap(ctx, camera, string(cause), at)
	if err != nil {
		return err
	}
	l.open[camera] = openGap{id, cause}
	l.log.Info("recording gap started", "camera", camera, "cause", cause)
	return nil
}

func (l *Ledger) close(ctx context.Context, camera string, g openGap, at time.Time) error {
	if err := l.st.CloseGap(ctx, g.id, at); err != nil {
		return err
	}
	delete(l.open, camera)
	l.log.Info("recording gap ended", "camera", camera, "cause", g.cause)
	return nil
}

// Gaps returns camera's gaps overlapping [from, to), oldest first; a gap that lasts
// has a zero End.
func (l *Ledger) Gaps(ctx context.Context, camera string, from, to time.Time) ([]Gap, error) {
	if !from.Before(to) {
		return nil, errors.New("gaps: from must be before to")
	}
	rows, err := l.st.Gaps(ctx, camera, from, to, MaxGaps)
	if err != nil {
		return nil, fmt.Errorf("gaps of %s: %w", camera, err)
	}
	out := make([]Gap, len(rows))
	for i, g := range rows {
		out[i] = Gap{Camera: g.Camera, Start: g.Start, End: g.End, Cause: Cause(g.Cause)}
	}
	return out, nil
}
