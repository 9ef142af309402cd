package main

import (
	"net"
	"testing"

	"github.com/straja-nvr/straja/configs"
)

// Live-view media listens only where the page can be reached from: loopback for a
// loopback service, every interface once remote access is configured.
func TestMediaBindAddress(t *testing.T) {
	cases := []struct {
		listen string
		remote bool
		want   net.IP
	}{
		{"127.0.0.1:8080", false, net.IPv4(127, 0, 0, 1)},
		{"localhost:8080", false, net.IPv4(127, 0, 0, 1)},
		{"[::1]:8080", false, net.IPv6loopback},
		{"127.0.0.1:8080", true, nil},
		{"0.0.0.0:8080", true, nil},
		{"192.0.2.10:8080", true, nil},
	}
	for _, c := range cases {
		cfg := configs.Default()
		cfg.Listen, cfg.AllowRemote = c.listen, c.remote
		if got := mediaBindAddress(&cfg); !got.Equal(c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("listen %s allow_remote %v: media binds %v, want %v", c.listen, c.remote, got, c.want)
		}
	}
}
