package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/straja-nvr/straja/configs"
)

// serverTLS loads the HTTPS certificate; nil when tls is not configured. A
// certificate that has expired or soon will is logged, not refused: a recorder
// that stays down after a reboot is worse than a browser warning.
func serverTLS(cfg *configs.Config, log *slog.Logger) (*tls.Config, error) {
	if !cfg.TLS.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if leaf := cert.Leaf; leaf != nil {
		switch left := time.Until(leaf.NotAfter); {
		case left <= 0:
			log.Error("the tls certificate has expired: browsers refuse it; replace tls.cert_file and key_file "+
				"(`straja cert` makes a self-signed pair) and restart",
				"cert_file", cfg.TLS.CertFile, "not_after", leaf.NotAfter.UTC())
		case left < 30*24*time.Hour:
			log.Warn("the tls certificate expires soon; replace it and restart",
				"cert_file", cfg.TLS.CertFile, "not_after", leaf.NotAfter.UTC())
		}
		// A name users type that the certificate lacks gets a browser warning.
		names := slices.Clone(cfg.PublicHosts)
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil && !configs.IsLoopback(cfg.Listen) {
			if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
				names = append(names, host)
			}
		}
		for _, h := range names {
			if leaf.VerifyHostname(h) != nil {
				log.Warn("browsers reaching Straja as "+h+" will warn: the tls certificate is not for that name "+
					"(`straja cert --hosts` with every name and address users type makes one that is)",
					"host", h, "cert_file", cfg.TLS.CertFile, "cert_names", append(slices.Clone(leaf.DNSNames), ipStrings(leaf.IPAddresses)...))
			}
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// metricsHandler serves /metrics alone, for the loopback-only metrics.listen. It
// answers only requests addressed to a loopback name, so that a web page cannot
// read it through DNS rebinding.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "this address serves only requests for localhost", http.StatusMisdirectedRequest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine: localhost or a
// loopback IP, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	return strings.EqualFold(host, "localhost") || err == nil && ip.IsLoopback()
}
