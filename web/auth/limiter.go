package auth

import (
	"sync"
	"time"
)

// Limiter counts failed sign-ins per key (an account, a client address). After
// MaxFailures within Window a key is locked until its oldest failure leaves the
// window: sign-in answers 429 at once, without hashing, so guessing costs the
// attacker time and the server no memory.
type Limiter struct {
	MaxFailures int
	Window      time.Duration
	// MaxKeys bounds the keys tracked; when full, expired keys are dropped, and if
	// none expired a new key counts as locked (a flood of addresses cannot make the
	// map grow without end or reset everyone's count).
	MaxKeys int
	Now     func() time.Time

	mu   sync.Mutex
	fail map[string][]time.Time
}

// Defaults of a Limiter.
const (
	DefaultMaxFailures = 5
	DefaultWindow      = time.Minute
	DefaultMaxKeys     = 100_000
)

// NewLimiter returns a limiter with the defaults.
func NewLimiter() *Limiter {
	return &Limiter{MaxFailures: DefaultMaxFailures, Window: DefaultWindow, MaxKeys: DefaultMaxKeys, Now: time.Now}
}

// Locked reports whether any key is locked, and for how long yet.
func (l *Limiter) Locked(keys ...string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	var wait time.Duration
	for _, k := range keys {
		f := l.recent(k, now)
		if len(f) >= l.MaxFailures {
			wait = max(wait, f[len(f)-l.MaxFailures].Add(l.Window).Sub(now))
		} else if f == nil && len(l.fail) >= l.MaxKeys && !l.prune(now) {
			wait = max(wait, l.Window)
		}
	}
	return wait > 0, wait
}

// Fail counts a failure for each key and returns the keys it has just locked.
func (l *Limiter) Fail(keys ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]time.Time{}
	}
	now := l.Now()
	var locked []string
	for _, k := range keys {
		f := l.recent(k, now)
		if f == nil && len(l.fail) >= l.MaxKeys && !l.prune(now) {
			continue
		}
		f = append(f, now)
		if len(f) > l.MaxFailures {
			f = f[len(f)-l.MaxFailures:]
		}
		l.fail[k] = f
		if len(f) == l.MaxFailures {
			locked = append(locked, k)
		}
	}
	return locked
}

// Reset forgets a key's failures (a successful sign-in of that account).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fail, key)
}

// recent returns k's failures within the window, dropping older ones.
func (l *Limiter) recent(k string, now time.Time) []time.Time {
	f := l.fail[k]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.Window {
		i++
	}
	if i == len(f) {
		delete(l.fail, k)
		return nil
	}
	f = f[i:]
	l.fail[k] = f
	return f
}

// prune drops expired keys; it reports whether there is room now.
func (l *Limiter) prune(now time.Time) bool {
	for k, f := range l.fail {
		if now.Sub(f[len(f)-1]) >= l.Window {
			delete(l.fail, k)
		}
	}
	return len(l.fail) < l.MaxKeys
}
