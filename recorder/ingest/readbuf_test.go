package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestDialBufferedReadsWhatIsThere checks that the larger read buffer never waits for
// more data than has arrived (live view would lag), takes a burst in one read, and
// passes bursts and deadlines through intact.
func TestDialBufferedReadsWhatIsThere(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := dialBuffered(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()

	// A deadline far off: a Read that waited for the buffer to fill would run into it.
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096) // gortsplib's own buffer size
	n, err := c.Read(p)
	if err != nil || string(p[:n]) != "0123456789" {
		t.Fatalf("read %q, %v; want the 10 bytes sent", p[:n], err)
	}

	// A burst larger than gortsplib's buffer arrives whole and in order.
	burst := make([]byte, 20<<10)
	for i := range burst {
		burst[i] = byte(i)
	}
	if _, err := srv.Write(burst); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(burst))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != burst[i] {
			t.Fatalf("byte %d = %d, want %d", i, got[i], burst[i])
		}
	}

	// Deadlines reach the connection.
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(p); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a deadline error", err)
	}
}
