package ingest

import (
	"bufio"
	"context"
	"net"
)

// readBuffer is how much one read from a camera's RTSP connection may take in.
// gortsplib reads through a 4 KiB buffer, so the burst of RTP packets a camera sends
// for one frame (about 20 KiB for a 1080p P-frame at 4 Mbit/s) cost a read syscall,
// and often a scheduler wake-up, per packet or two. A read still returns as soon as
// any data is there, so nothing waits for the buffer to fill.
const readBuffer = 32 << 10

// bufferedConn reads its connection through a larger buffer. Deadlines and writes go
// to the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialBuffered is the RTSP client's dialer: a TCP connection read through
// readBuffer. RTP over UDP is read by gortsplib's own sockets, not through it.
func dialBuffered(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}, nil
}
