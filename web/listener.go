package web

import (
	"net"
	"sync"
)

// Connection limits of LimitListener as the service uses them. Each connection takes
// a file descriptor (a streaming one two: the footage it reads), and recording needs
// descriptors for its spool: far below the process's limit, far above what the
// browsers of a council's offices open (a browser opens at most 6 per server).
const (
	DefaultMaxConns        = 1024
	DefaultMaxConnsPerHost = 256
)

// LimitListener caps the connections open at once: at most total, and at most
// perHost from one client address. A flood of idle or slow connections cannot take
// the descriptors recording needs (tested: 19,000 of them made every camera's spool
// fail with "too many open files"). Beyond perHost a new connection is closed at once;
// beyond total, Accept waits for one to close.
func LimitListener(ln net.Listener, total, perHost int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, total), perHost: perHost,
		hosts: map[string]int{}, done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots   chan struct{}
	perHost int
	closed  sync.Once
	done    chan struct{}

	mu    sync.Mutex
	hosts map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l.mu.Lock()
		n := l.hosts[host]
		if n < l.perHost {
			l.hosts[host] = n + 1
		}
		l.mu.Unlock()
		if n >= l.perHost {
			<-l.slots
			_ = c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *limitListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	l.mu.Unlock()
	<-l.slots
}

// limitConn gives its slot back once, when closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	host string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

// hostConns is how many connections host has open.
func (l *limitListener) hostConns(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[host]
}
