package configs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/straja-nvr/straja/storage"
)

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	prefixPattern = regexp.MustCompile(`^[a-z0-9-]+(/[a-z0-9-]+)*/?$`)
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	envPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostPattern   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Validate fills in defaults that depend on other fields (spool and disk paths
// under DataDir, camera transport and read timeout), then reports every problem
// in c, joined with errors.Join. When c came from Load or Parse, each problem
// names the file and line (or the environment variable) it came from. The text
// never contains a configured secret.
func (c *Config) Validate() error { return c.check(nil) }

// check joins decoding problems with validation problems, skipping validation of
// fields that already failed to decode, and redacts secrets from all of them.
func (c *Config) check(decodeErrs []*Error) error {
	c.fillDefaults()
	var failed []string
	if c.src != nil {
		failed = c.src.failed
	}
	errs := decodeErrs
	for _, e := range c.validate() {
		if !slices.ContainsFunc(failed, func(f string) bool { return isWithin(e.Path, f) }) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		e.Msg = Redact(e.Msg, c)
		e.Path = Redact(e.Path, c)
		joined[i] = e
	}
	return errors.Join(joined...)
}

// isWithin reports whether path is field or one of its sub-fields.
func isWithin(path, field string) bool {
	rest, ok := strings.CutPrefix(path, field)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

func (c *Config) validate() []*Error {
	var errs []*Error
	bad := func(path, format string, args ...any) {
		errs = append(errs, c.src.errorf(path, format, args...))
	}

	if err := checkListen(c.Listen); err != "" {
		bad("listen", "%s", err)
	} else if !IsLoopback(c.Listen) && !c.TLS.Enabled() && !c.InsecurePlainHTTP {
		bad("listen", "%q is reachable from other machines, where passwords and video would cross the "+
			"network in clear: serve HTTPS with tls.cert_file/key_file (`straja cert` makes a self-signed pair), "+
			"or set insecure_plain_http: true on a trusted network", c.Listen)
	}
	if c.TLS.Enabled() && c.InsecurePlainHTTP {
		bad("insecure_plain_http", "cannot be true with tls set (the service answers HTTPS only); remove one")
	}
	c.checkTLS(bad)
	if t := c.Metrics.Token; t != "" {
		if len(t) < 16 || len(t) > 256 || strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			// Never the token itself: only what is wrong with it.
			bad("metrics.token", "must be 16-256 printable ASCII characters without spaces (got %d characters)", len(t))
		}
	}
	if l := c.Metrics.Listen; l != "" {
		if err := checkListen(l); err != "" {
			bad("metrics.listen", "%s", err)
		} else if !IsLoopback(l) {
			bad("metrics.listen", "%q is not a loopback address: metrics served here need no token, "+
				"so only this machine may reach them (use 127.0.0.1:PORT, or metrics.token on the main listener)", l)
		} else if _, port, _ := net.SplitHostPort(l); l == c.Listen && port != "0" {
			bad("metrics.listen", "%q is the main listen address; pick another port", l)
		}
	}
	for i, h := range c.PublicHosts {
		if !validHostName(h) {
			bad(fmt.Sprintf("public_hosts[%d]", i), "%q is not a host name or IP address "+
				"(lower case, without scheme or port, e.g. straja.example.ro or 10.20.0.5)", h)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}

	switch s := c.Storage; s.Backend {
	case BackendDisk:
		if s.Disk.Path == "" {
			bad("storage.disk.path", "is required")
		}
	case BackendS3:
		for _, f := range []struct{ name, v string }{
			{"endpoint", s.S3.Endpoint}, {"bucket", s.S3.Bucket},
			{"access_key", s.S3.AccessKey}, {"secret_key", s.S3.SecretKey},
		} {
			if f.v == "" {
				bad("storage.s3."+f.name, "is required for the s3 backend")
			}
		}
		if s.S3.Endpoint != "" && !validEndpoint(s.S3.Endpoint) {
			bad("storage.s3.endpoint", "must be host or host:port without a scheme (set tls: true for https)")
		}
		if s.S3.Bucket != "" && (!bucketPattern.MatchString(s.S3.Bucket) || strings.Contains(s.S3.Bucket, "..")) {
			bad("storage.s3.bucket", "must be 3-63 characters of a-z, 0-9, '.' and '-'")
		}
		if s.S3.Prefix != "" && !prefixPattern.MatchString(s.S3.Prefix) {
			bad("storage.s3.prefix", "must be words of a-z, 0-9 and '-' separated by '/', with no leading '/'")
		}
	default:
		bad("storage.backend", "is required (disk or s3)")
	}

	if c.Spool.Dir == "" {
		bad("spool.dir", "is required")
	}
	if c.Spool.MaxBytes <= 0 {
		bad("spool.max_bytes", "must be positive")
	}

	seg, frag := c.Recording.SegmentDuration, c.Recording.FragmentDuration
	if err := checkRange(seg, 2*time.Second, time.Hour); err != "" {
		bad("recording.segment_duration", "%s", err)
	}
	if err := checkRange(frag, 100*time.Millisecond, time.Duration(max(seg, Duration(100*time.Millisecond)))); err != "" {
		bad("recording.fragment_duration", "%s (at most segment_duration)", err)
	}

	if p := c.WebRTC.UDPPort; p < 0 || p > 65535 {
		bad("webrtc.udp_port", "must be a port number (0 for a random port)")
	}
	if p := c.WebRTC.TCPPort; p < -1 || p > 65535 {
		bad("webrtc.tcp_port", "must be a port number (0 for a random port, -1 to disable)")
	}
	if n := c.WebRTC.MaxSessions; n < 1 || n > 10000 {
		bad("webrtc.max_sessions", "must be 1..10000")
	}
	if n := c.WebRTC.MaxSessionsPerClient; n < 1 || n > max(c.WebRTC.MaxSessions, 1) {
		bad("webrtc.max_sessions_per_client", "must be 1..max_sessions (%d)", c.WebRTC.MaxSessions)
	}
	if d := c.WebRTC.MaxSessionDuration; d != 0 {
		if err := checkRange(d, time.Minute, 30*24*time.Hour); err != "" {
			bad("webrtc.max_session_duration", "%s (or 0 for no limit)", err)
		}
	}
	for i, a := range c.WebRTC.HostAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			bad(fmt.Sprintf("webrtc.host_addresses[%d]", i), "%q is not an IP address", a)
		}
	}
	for i, s := range c.WebRTC.STUNServers {
		if !validSTUN(s) {
			bad(fmt.Sprintf("webrtc.stun_servers[%d]", i), "%q is not a stun:host[:port] URL", s)
		}
	}

	if _, err := cron.ParseStandard(c.State.BackupSchedule); err != nil {
		bad("state.backup_schedule", "%q is not a cron schedule (like \"30 3 * * *\" or @daily): %v", c.State.BackupSchedule, err)
	}
	if err := checkRange(c.Audit.AnchorInterval, time.Minute, time.Hour); err != "" {
		bad("audit.anchor_interval", "%s", err)
	}
	if err := checkRange(c.Auth.SessionIdle, time.Minute, 24*time.Hour); err != "" {
		bad("auth.session_idle", "%s", err)
	}
	if err := checkRange(c.Auth.SessionMax, time.Duration(c.Auth.SessionIdle), 30*24*time.Hour); err != "" {
		bad("auth.session_max", "%s (it cannot be shorter than auth.session_idle)", err)
	}
	if err := checkRange(c.Auth.GuardLookback, time.Hour, 365*24*time.Hour); err != "" {
		bad("auth.guard_lookback", "%s", err)
	}
	c.validateExport(bad)
	c.validateAlerts(bad)
	if k := c.State.BackupKeep; k < 1 || k > 10000 {
		bad("state.backup_keep", "must be between 1 and 10000, got %d", k)
	}

	c.validateRetention(bad)

	sites := map[string]int{}
	for i, s := range c.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		checkID(bad, p, "site", "sites", s.ID, checkSiteID, i, sites)
		if strings.TrimSpace(s.Name) == "" {
			bad(p+".name", "is required")
		}
	}
	siteIDs := make([]string, 0, len(c.Sites))
	for _, s := range c.Sites {
		siteIDs = append(siteIDs, s.ID)
	}

	cams := map[string]int{}
	for i, cam := range c.Cameras {
		p := fmt.Sprintf("cameras[%d]", i)
		checkID(bad, p, "camera", "cameras", cam.ID, storage.CheckCameraID, i, cams)
		checkCamera(func(field, format string, args ...any) { bad(p+"."+field, format, args...) }, cam, siteIDs)
		if e := cam.PasswordEnv; e != "" {
			if !envPattern.MatchString(e) {
				bad(p+".password_env", "%q is not an environment variable name", e)
			} else if _, ok := c.lookupEnv(e); !ok && (c.src == nil || !c.src.noCameraSecrets) {
				bad(p+".password_env", "environment variable %s is not set", e)
			}
		}
	}
	return errs
}

// checkCamera checks cam's fields but its ID and password_env, naming each by its own
// name: the configuration file and the API share the rules.
func checkCamera(bad func(field, format string, args ...any), cam Camera, siteIDs []string) {
	if strings.TrimSpace(cam.Name) == "" {
		bad("name", "is required")
	}
	if cam.Site == "" {
		bad("site", "is required (one of: %s)", strings.Join(siteIDs, ", "))
	} else if !slices.Contains(siteIDs, cam.Site) {
		bad("site", "unknown site %q (sites: %s)", cam.Site, strings.Join(siteIDs, ", "))
	}
	if cam.URL == "" {
		bad("url", "is required")
	} else if err := checkCameraURL(cam.URL, cam.PasswordEnv != ""); err != "" {
		bad("url", "%s", err)
	}
	if cam.LiveURL != "" {
		if err := checkCameraURL(cam.LiveURL, cam.PasswordEnv != ""); err != "" {
			bad("live_url", "%s", err)
		}
	}
	switch cam.Transport {
	case TransportAuto, TransportTCP, TransportUDP:
	default:
		bad("transport", "must be auto, tcp or udp")
	}
	if err := checkRange(cam.ReadTimeout, time.Second, 5*time.Minute); err != "" {
		bad("read_timeout", "%s", err)
	}
}

// CheckCamera reports what is wrong with a camera managed at runtime, by the rules of
// the configuration file's cameras, among the sites siteIDs. Each problem's Path is the
// field ("url", "site"); the text never quotes a URL. Empty transport and read_timeout
// take their defaults first, as in the file; password_env is for the file only.
func CheckCamera(cam *Camera, siteIDs []string) []*Error {
	var errs []*Error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{Path: field, Msg: fmt.Sprintf(format, args...)})
	}
	if cam.Transport == "" {
		cam.Transport = TransportAuto
	}
	if cam.ReadTimeout == 0 {
		cam.ReadTimeout = Duration(10 * time.Second)
	}
	if cam.ID == "" {
		bad("id", "is required")
	} else if err := storage.CheckCameraID(cam.ID); err != nil {
		bad("id", "%v", err)
	}
	if cam.PasswordEnv != "" {
		bad("password_env", "is for cameras of the configuration file only")
	}
	checkCamera(bad, *cam, siteIDs)
	return errs
}

// CheckSite reports what is wrong with a site managed at runtime, by the rules of the
// configuration file's sites; each problem's Path is the field.
func CheckSite(s Site) []*Error {
	var errs []*Error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{Path: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.ID == "" {
		bad("id", "is required")
	} else if err := checkSiteID(s.ID); err != nil {
		bad("id", "%v", err)
	}
	if strings.TrimSpace(s.Name) == "" {
		bad("name", "is required")
	}
	return errs
}

func checkRange(d Duration, lo, hi time.Duration) string {
	if time.Duration(d) < lo || time.Duration(d) > hi {
		return fmt.Sprintf("%s is outside the allowed range %s to %s", d, Duration(lo), Duration(hi))
	}
	return ""
}

func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("%q is not a port number", port)
	}
	return ""
}

// IsLoopback reports whether the listen address addr (host:port) can be reached only
// from this machine: localhost or a loopback IP.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || err == nil && ip.IsLoopback()
}

// checkTLS checks that the certificate and key files exist and form a pair, so that a
// wrong path fails at load, naming the field, not at the first browser's handshake.
func (c *Config) checkTLS(bad func(path, format string, args ...any)) {
	t := c.TLS
	switch {
	case !t.Enabled():
		return
	case t.CertFile == "":
		bad("tls.cert_file", "is required with tls.key_file")
		return
	case t.KeyFile == "":
		bad("tls.key_file", "is required with tls.cert_file")
		return
	}
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		bad("tls.cert_file", "%v", err)
	}
	keyPEM, kerr := os.ReadFile(t.KeyFile)
	if kerr != nil {
		bad("tls.key_file", "%v", kerr)
	}
	if err != nil || kerr != nil {
		return
	}
	if _, err := parseCertificate(certPEM); err != nil {
		bad("tls.cert_file", "%s: %v", t.CertFile, err)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		bad("tls.key_file", "%s is not the private key of tls.cert_file: %v", t.KeyFile, err)
	}
}

// parseCertificate returns the first certificate of a PEM file.
func parseCertificate(pemData []byte) (*x509.Certificate, error) {
	for rest := pemData; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("holds no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate does not parse: %w", err)
			}
			return cert, nil
		}
	}
}

// validHostName reports whether s is an IP address or a lower-case DNS name, as a
// browser sends it in the Host header (without the port).
func validHostName(s string) bool {
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return ip.Zone() == ""
	}
	return len(s) <= 253 && hostPattern.MatchString(s)
}

func validEndpoint(s string) bool {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host != "" && !strings.ContainsAny(host, "/:@?# ")
}

func validSTUN(s string) bool {
	rest, ok := strings.CutPrefix(s, "stun:")
	if !ok {
		rest, ok = strings.CutPrefix(s, "stuns:")
	}
	return ok && validEndpoint(rest)
}

// checkSiteID is the site ID rule: a camera ID's characters, up to 32.
func checkSiteID(id string) error {
	if len(id) > 32 || !idPattern.MatchString(id) {
		return fmt.Errorf("%q must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit", id)
	}
	return nil
}

// checkID validates the ID of list item i (at path p): required, valid by check, unique
// among seen, which it joins.
func checkID(bad func(path, format string, args ...any), p, kind, list, id string, check func(string) error, i int, seen map[string]int) {
	err := check(id)
	switch first, dup := seen[id]; {
	case id == "":
		bad(p+".id", "is required")
	case err != nil:
		bad(p+".id", "%v", err)
	case dup:
		bad(p+".id", "duplicate %s id %q (also %s[%d])", kind, id, list, first)
	default:
		seen[id] = i
	}
}
