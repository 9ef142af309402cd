package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
)

// TestLimitListener: idle connections from one address cannot take more than their
// share; another address is still served, and a slot comes back when one closes.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 6, 4)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	addr := inner.Addr().String()

	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// get reports whether a request on a new connection from is answered.
	get := func(from string) bool {
		c := dial(from)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	// A slow client: four connections that never finish their headers.
	var idle []net.Conn
	for range 4 {
		c := dial("127.0.0.1")
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	testutil.WaitFor(t, 5*time.Second, "the four idle connections accepted", func() bool {
		return ln.(*limitListener).hostConns("127.0.0.1") == 4
	})
	if get("127.0.0.1") {
		t.Error("a fifth connection from the flooding address was served; want it closed")
	}
	if !get("127.0.0.2") {
		t.Error("another address was not served while one address was at its limit")
	}
	idle[0].Close()
	testutil.WaitFor(t, 5*time.Second, "a slot back after an idle connection closed", func() bool {
		return get("127.0.0.1")
	})
}
