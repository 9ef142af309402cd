package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// lossCounter counts RTP packets of one stream and how many sequence numbers were
// skipped, as RFC 3550 (A.3) does: expected = highest - first + 1 in extended
// (wrap-counted) sequence numbers; lost = expected - received. Reordered packets are not
// loss; duplicates can make lost negative, which reads as 0.
type lossCounter struct {
	started   bool
	first     int64 // extended sequence number of the first packet
	highest   int64
	received  int64
	bytes     int64
	firstSeen time.Time
}

// add records one packet with sequence number seq and size bytes.
func (c *lossCounter) add(seq uint16, size int) {
	c.received++
	c.bytes += int64(size)
	if !c.started {
		c.started = true
		c.first, c.highest = int64(seq), int64(seq)
		return
	}
	// The packet's extended number is the one nearest to the highest so far: a jump
	// of less than half the sequence space, forwards or backwards.
	ext := c.highest + int64(int16(seq-uint16(c.highest)))
	if ext > c.highest {
		c.highest = ext
	}
	if ext < c.first {
		c.first = ext
	}
}

func (c *lossCounter) expected() int64 {
	if !c.started {
		return 0
	}
	return c.highest - c.first + 1
}

func (c *lossCounter) lost() int64 { return max(0, c.expected()-c.received) }

// lossPercent is lost / expected in percent (0 with no packets).
func (c *lossCounter) lossPercent() float64 {
	if e := c.expected(); e > 0 {
		return 100 * float64(c.lost()) / float64(e)
	}
	return 0
}

// viewer is one receive-only WebRTC client of a camera, negotiated over WHEP.
type viewer struct {
	pc       *webrtc.PeerConnection
	location string // WHEP session URL
	done     chan struct{}

	mu   sync.Mutex
	loss lossCounter
}

// viewerAPI is a pion API for receive-only H.264 clients on loopback. No interceptors:
// without NACKs, what the counters see is the raw loss. rcvbuf, when positive, is each
// viewer socket's receive buffer (the kernel caps it at net.core.rmem_max).
func viewerAPI(rcvbuf int) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// Only loopback: the server and the viewers share the machine.
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	if rcvbuf > 0 {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("viewer network: %w", err)
		}
		se.SetNet(bufferedNet{Net: n, rcvbuf: rcvbuf})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

// bufferedNet gives every UDP socket pion opens a larger receive buffer. All viewers
// share this process and two cores with the server: with the default buffer (208 KiB,
// about 90 packets) a keyframe burst overflows a viewer's socket whenever its goroutine
// is not scheduled in time, which measures the load tool, not the server.
type bufferedNet struct {
	*stdnet.Net
	rcvbuf int
}

// ListenUDP implements transport.Net.
func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if b, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		_ = b.SetReadBuffer(n.rcvbuf)
	}
	return c, nil
}

// openViewer negotiates a viewer of camera id at the straja HTTP address base.
func openViewer(ctx context.Context, api *webrtc.API, base, id string) (*viewer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	v := &viewer{pc: pc, done: make(chan struct{})}
	fail := func(err error) (*viewer, error) {
		_ = pc.Close()
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(fmt.Errorf("add transceiver: %w", err))
	}
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			defer close(v.done)
			buf := make([]byte, 1600)
			for {
				n, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				if n < 12 {
					continue
				}
				v.mu.Lock()
				v.loss.add(binary.BigEndian.Uint16(buf[2:4]), n)
				v.mu.Unlock()
			}
		})
	})
	gathered := webrtc.GatheringCompletePromise(pc)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("create offer: %w", err))
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(fmt.Errorf("set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		return fail(errors.New("ice gathering timed out"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/cameras/"+id+"/whep",
		bytes.NewReader([]byte(pc.LocalDescription().SDP)))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(fmt.Errorf("whep offer: %w", err))
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(fmt.Errorf("whep answer: %w", err))
	}
	if resp.StatusCode != http.StatusCreated {
		return fail(fmt.Errorf("whep offer: %s: %s", resp.Status, bytes.TrimSpace(answer)))
	}
	v.location = base + resp.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return fail(fmt.Errorf("set answer: %w", err))
	}
	return v, nil
}

// packets is the number of packets received since the last reset.
func (v *viewer) packets() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.loss.received
}

// reset starts counting afresh (the measurement window begins).
func (v *viewer) reset() {
	v.mu.Lock()
	v.loss = lossCounter{}
	v.mu.Unlock()
}

func (v *viewer) snapshot() lossCounter {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.loss
}

// close ends the WHEP session and the connection, and waits for the reader.
func (v *viewer) close() {
	if v.location != "" {
		if req, err := http.NewRequest(http.MethodDelete, v.location, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	_ = v.pc.Close()
	select {
	case <-v.done:
	case <-time.After(5 * time.Second): // no track ever arrived
	}
}

// viewerSet is the viewers of one run.
type viewerSet struct {
	viewers []*viewer
	errs    []error
}

// openViewers opens n viewers of camera id, a few at a time, and waits until each has
// received video. Viewers that fail are reported in errs, not fatal.
func openViewers(ctx context.Context, base, id string, n, rcvbuf int) (*viewerSet, error) {
	api, err := viewerAPI(rcvbuf)
	if err != nil {
		return nil, err
	}
	set := &viewerSet{}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := openViewer(ctx, api, base, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				set.errs = append(set.errs, err)
				return
			}
			set.viewers = append(set.viewers, v)
		})
	}
	wg.Wait()
	err = poll(ctx, 30*time.Second, "every viewer to receive video", func() (bool, error) {
		for _, v := range set.viewers {
			if v.packets() == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && ctx.Err() != nil {
		set.close()
		return nil, err
	}
	if err != nil {
		// Keep the ones that work; the silent ones count as failures.
		var ok []*viewer
		for _, v := range set.viewers {
			if v.packets() == 0 {
				set.errs = append(set.errs, errors.New("no video within 30s of connecting"))
				v.close()
				continue
			}
			ok = append(ok, v)
		}
		set.viewers = ok
	}
	return set, nil
}

func (s *viewerSet) reset() {
	for _, v := range s.viewers {
		v.reset()
	}
}

func (s *viewerSet) close() {
	var wg sync.WaitGroup
	for _, v := range s.viewers {
		wg.Go(v.close)
	}
	wg.Wait()
}
