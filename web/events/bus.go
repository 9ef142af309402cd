// Package events is the service's live event bus: features publish what happens
// (camera state changes, alerts, retention runs, export progress) and each
// GET /api/v1/events stream receives what its user may see. Publishing never waits
// for a subscriber: each has a bounded buffer, and one that falls behind is dropped
// (its stream ends; the browser reconnects and reloads what it shows).
package events

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Event types.
const (
	TypeCameraState    = "camera_state"
	TypeAlert          = "alert"
	TypeRetentionRun   = "retention_run"
	TypeExportProgress = "export_progress"
)

// Event is one thing that happened. Who may receive it: the users who may view
// Camera (in Site) when Camera is set; only User when User is set; else the roles in
// Roles (none: everyone signed in).
type Event struct {
	Type   string    `json:"type"`
	Camera string    `json:"camera,omitempty"`
	Site   string    `json:"site,omitempty"`
	At     time.Time `json:"at"`
	Data   any       `json:"data,omitempty"`
	User   string    `json:"-"`
	Roles  []string  `json:"-"`
	// ID numbers events in the order they were published; set by Publish.
	ID uint64 `json:"-"`
}

// Defaults of a Bus.
const (
	DefaultMaxSubscribers = 256
	DefaultBuffer         = 64
)

// ErrTooMany is returned by Subscribe when the bus has its maximum of subscribers.
var ErrTooMany = errors.New("too many event streams open")

// Bus fans events out to subscribers. Safe for concurrent use; the zero value is not
// usable: call New. A nil *Bus drops everything published.
type Bus struct {
	maxSubs, buffer int
	seq             atomic.Uint64
	dropped         atomic.Uint64

	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// New returns a bus allowing maxSubs subscribers with buffer events each (0:
// the defaults).
func New(maxSubs, buffer int) *Bus {
	if maxSubs <= 0 {
		maxSubs = DefaultMaxSubscribers
	}
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Bus{maxSubs: maxSubs, buffer: buffer, subs: map[*Subscription]struct{}{}}
}

// Subscription receives the events its filter accepts until Close, or until it falls
// behind and is dropped; either way C is closed.
type Subscription struct {
	bus    *Bus
	filter func(Event) bool
	c      chan Event
	closed bool // guarded by bus.mu
}

// C delivers the events.
func (s *Subscription) C() <-chan Event { return s.c }

// Close ends the subscription. Safe to call more than once.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.bus.subs, s)
	close(s.c)
}

// Subscribe adds a subscriber receiving the events filter accepts (nil: all).
func (b *Bus) Subscribe(filter func(Event) bool) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= b.maxSubs {
		return nil, ErrTooMany
	}
	s := &Subscription{bus: b, filter: filter, c: make(chan Event, b.buffer)}
	b.subs[s] = struct{}{}
	return s, nil
}

// Publish sends ev to every subscriber that accepts it, without waiting: a
// subscriber whose buffer is full is dropped. At defaults to now.
func (b *Bus) Publish(ev Event) {
	if b == nil {
		return
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	ev.At = ev.At.UTC()
	b.mu.Lock()
	defer b.mu.Unlock()
	ev.ID = b.seq.Add(1)
	for s := range b.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			b.dropped.Add(1)
			s.closeLocked()
		}
	}
}

// Subscribers returns how many subscribers there are.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped returns how many subscribers were dropped for falling behind.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
