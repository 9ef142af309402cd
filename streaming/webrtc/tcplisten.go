package webrtc

import (
	"container/list"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// pendingListener bounds what ICE-TCP connections cost before they prove useful. pion's
// TCP mux keeps every accepted connection until its first STUN message arrives (or
// FirstStunBindTimeout passes), and one whose STUN names no session for another
// AliveDurationForConnFromStun: idle connections from anyone would hold a file
// descriptor each, and enough of them starve the recorder of descriptors.
//
// A connection is pending from Accept until the server first writes to it, which pion
// does only to answer a STUN binding request for a real session. Beyond maxPending
// pending connections, or a quarter of that from one IP address, the oldest (of that
// address) is closed: a flood from one machine cannot push out anyone else's, and a
// wider one must outpace a viewer's first STUN message. Beyond maxOpen connections in
// all, new ones are closed at once.
type pendingListener struct {
	net.Listener
	maxPending, maxPerIP, maxOpen int
	idle, pushed, refused         prometheus.Counter

	mu       sync.Mutex
	pending  list.List // of *pendingConn, oldest first
	byIP     map[string]int
	open     int
	accepted int
	closed   bool
}

func newPendingListener(ln net.Listener, maxPending, maxOpen int, closed *prometheus.CounterVec) *pendingListener {
	return &pendingListener{Listener: ln, maxPending: maxPending, maxPerIP: max(maxPending/4, 1),
		maxOpen: maxOpen, byIP: map[string]int{}, idle: closed.WithLabelValues("idle"),
		pushed: closed.WithLabelValues("pending_full"), refused: closed.WithLabelValues("open_full")}
}

// Accept returns the next connection within the limits.
func (l *pendingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pc := &pendingConn{Conn: c, l: l, ip: remoteIP(c)}
		var evict *pendingConn
		l.mu.Lock()
		l.accepted++
		if l.closed || l.open >= l.maxOpen {
			full := !l.closed
			l.mu.Unlock()
			_ = c.Close()
			if full {
				l.refused.Inc()
			}
			continue
		}
		if l.byIP[pc.ip] >= l.maxPerIP {
			for e := l.pending.Front(); e != nil; e = e.Next() {
				if e.Value.(*pendingConn).ip == pc.ip {
					evict = e.Value.(*pendingConn)
					break
				}
			}
		} else if l.pending.Len() >= l.maxPending {
			evict = l.pending.Front().Value.(*pendingConn)
		}
		if evict != nil {
			l.unpendLocked(evict)
			l.pushed.Inc()
		}
		pc.elem = l.pending.PushBack(pc)
		l.byIP[pc.ip]++
		l.open++
		l.mu.Unlock()
		if evict != nil {
			_ = evict.Close()
		}
		return pc, nil
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// Close stops accepting and closes the pending connections, so the TCP mux, whose
// Close waits for them, does not wait for their first-STUN timeout.
func (l *pendingListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	var conns []*pendingConn // unpended here so that shutdown does not count as idle
	for l.pending.Len() > 0 {
		c := l.pending.Front().Value.(*pendingConn)
		l.unpendLocked(c)
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// listenerCounts is what a pendingListener holds: connections pending and open now,
// and accepted since it started.
type listenerCounts struct{ pending, open, accepted int }

func (l *pendingListener) counts() listenerCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return listenerCounts{l.pending.Len(), l.open, l.accepted}
}

func (l *pendingListener) unpendLocked(c *pendingConn) {
	if c.elem == nil {
		return
	}
	l.pending.Remove(c.elem)
	c.elem = nil
	if l.byIP[c.ip]--; l.byIP[c.ip] <= 0 {
		delete(l.byIP, c.ip)
	}
}

// pendingConn reports its first write and its close to the listener.
type pendingConn struct {
	net.Conn
	l         *pendingListener
	ip        string
	elem      *list.Element // in l.pending while pending; guarded by l.mu
	writeOnce sync.Once
	closeOnce sync.Once
}

// Write marks the connection matched: pion writes only for a session.
func (c *pendingConn) Write(b []byte) (int, error) {
	c.writeOnce.Do(func() {
		c.l.mu.Lock()
		c.l.unpendLocked(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Write(b)
}

func (c *pendingConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.l.mu.Lock()
		idle := c.elem != nil // closed by pion while waiting for STUN
		c.l.unpendLocked(c)
		c.l.open--
		c.l.mu.Unlock()
		if idle {
			c.l.idle.Inc()
		}
	})
	return err
}
