package main

import (
	"net"
	"testing"

	"github.com/straja-nvr/straja/configs"
)

// Live-view media listens only where the page can be reached from: loopback for a
// loopback service, every interface when the service listens beyond loopback.
func TestMediaBindAddress(t *testing.T) {
	cases := []struct {
		listen string
		want   net.IP
	}{
		{"127.0.0.1:8080", net.IPv4(127, 0, 0, 1)},
		{"localhost:8080", net.IPv4(127, 0, 0, 1)},
		{"[::1]:8080", net.IPv6loopback},
		{"0.0.0.0:8080", nil},
		{":8443", nil},
		{"192.0.2.10:8080", nil},
	}
	for _, c := range cases {
		cfg := configs.Default()
		cfg.Listen = c.listen
		if got := mediaBindAddress(&cfg); !got.Equal(c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("listen %s: media binds %v, want %v", c.listen, got, c.want)
		}
	}
}
