package web

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/web/events"
)

// BenchmarkEventsFanOut100 measures one camera state change reaching 100 open
// GET /api/v1/events streams (guards, over HTTP on loopback): each op publishes an
// event and waits until every client has read it.
func BenchmarkEventsFanOut100(b *testing.B) {
	const clients = 100
	bus := events.New(0, 0)
	o := withTestUsers(b, Options{Cameras: fakeCameras{{ID: "gate", Site: "bastion"}}, Listen: "127.0.0.1:8080",
		Auditor: newAuditLog(b)})
	o.Events = bus
	srv := httptest.NewServer(New(o, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	tr := &http.Transport{MaxConnsPerHost: clients + 10, MaxIdleConnsPerHost: clients + 10}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	got := make(chan struct{}, clients)
	var wg sync.WaitGroup
	var bodies []func()
	for range clients {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession("guard")})
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("stream: %v %v", err, resp)
		}
		bodies = append(bodies, func() { resp.Body.Close() })
		br := bufio.NewReader(resp.Body)
		wg.Go(func() {
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(l, "event: ") {
					got <- struct{}{}
				}
			}
		})
	}
	testutil.WaitFor(b, 10*time.Second, "every stream open", func() bool { return bus.Subscribers() == clients })
	ev := events.Event{Type: events.TypeCameraState, Camera: "gate", Site: "bastion", Data: map[string]any{"state": "offline"}}
	b.ResetTimer()
	for b.Loop() {
		bus.Publish(ev)
		for range clients {
			<-got
		}
	}
	b.StopTimer()
	if d := bus.Dropped(); d != 0 {
		b.Errorf("%d streams fell behind and were dropped", d)
	}
	for _, c := range bodies {
		c()
	}
	wg.Wait()
}
