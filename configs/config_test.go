package configs

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/days"
	"gopkg.in/yaml.v3"
)

// secretPatterns find the secrets a test file holds: URL passwords and S3 keys.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`://[^/\s:@]*:([^\s@]+)@`),
	regexp.MustCompile(`secret_key:\s*(\S+)`),
	regexp.MustCompile(`token: "([^"]+)"`),
	regexp.MustCompile(`token: ([^"\s]+)`),
}

func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) < 12 {
		t.Fatalf("want at least 12 testdata/*.bad.yaml files, got %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wants, secrets []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("file has no '# want:' line")
			}
			for _, line := range strings.Split(string(data), "\n") {
				for _, re := range secretPatterns {
					if m := re.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "#") {
						secrets = append(secrets, m[1])
					}
				}
			}

			cfg, err := Load(file)
			if err == nil {
				t.Fatalf("Load succeeded (%+v), want errors:\n%s", cfg, strings.Join(wants, "\n"))
			}
			msg := err.Error()
			for _, w := range wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q; got:\n%s", w, msg)
				}
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error reveals secret %q:\n%s", s, msg)
				}
			}
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Errorf("error line does not start with %q: %s", file+":", line)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != file || ce.Line == 0 {
				t.Errorf("errors.As(*Error) = %+v, want File %q and a line", ce, file)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	cfg, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cfg.Cameras {
		ids = append(ids, c.ID)
		if !c.Recording() || c.Transport != TransportAuto || c.ReadTimeout != Duration(10*time.Second) {
			t.Errorf("camera %s: defaults not applied: %+v", c.ID, c)
		}
	}
	if got := strings.Join(ids, ","); got != "bastion-gate,bastion-courtyard,palat-entrance,palat-hall" {
		t.Errorf("demo cameras = %s", got)
	}
	if len(cfg.Sites) != 2 || cfg.Sites[0].Name != "Bastionul Theresia" || cfg.Sites[1].Name != "Palatul Administrativ" {
		t.Errorf("demo sites = %+v", cfg.Sites)
	}
	if cfg.Storage.Backend != BackendDisk || cfg.Recording.SegmentDuration != Duration(10*time.Second) {
		t.Errorf("demo storage/recording = %+v %+v", cfg.Storage, cfg.Recording)
	}
	if cam, ok := cfg.Camera("palat-hall"); !ok || cam.URL != "rtsp://127.0.0.1:8554/cam4" || cam.Site != "palat" {
		t.Errorf("Camera(palat-hall) = %+v, %v", cam, ok)
	}
	if _, ok := cfg.Camera("nope"); ok {
		t.Error("Camera(nope) found")
	}
}

func TestExample(t *testing.T) {
	t.Setenv("STRAJA_CAM_BASTION_GATE_PASSWORD", "p@ss/w0rd")
	t.Setenv("STRAJA_S3_SECRET_KEY", "minio-secret-123")
	cfg, err := Load("straja.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s3 := cfg.Storage.S3
	if cfg.Storage.Backend != BackendS3 || s3.Endpoint != "minio.cj.local:9000" || s3.SecretKey != "minio-secret-123" || !s3.TLS {
		t.Errorf("storage = %+v", cfg.Storage)
	}
	if st := cfg.State; st.BackupSchedule != "CRON_TZ=Europe/Bucharest 30 3 * * *" || st.BackupKeep != 14 {
		t.Errorf("state = %+v", st)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9464" || cfg.TLS.Enabled() || cfg.InsecurePlainHTTP {
		t.Errorf("metrics = %+v, tls = %+v, insecure_plain_http = %v", cfg.Metrics, cfg.TLS, cfg.InsecurePlainHTTP)
	}
	if cfg.Spool.MaxBytes != 20<<30 {
		t.Errorf("spool.max_bytes = %d", cfg.Spool.MaxBytes)
	}
	gate, _ := cfg.Camera("bastion-gate")
	if u, err := gate.DialURL(); err != nil || u != "rtsp://admin:p%40ss%2Fw0rd@10.20.1.11:554/Streaming/Channels/101" {
		t.Errorf("DialURL = %q, %v", u, err)
	}
	if u, err := gate.DialLiveURL(); err != nil || !strings.HasSuffix(u, "@10.20.1.11:554/Streaming/Channels/102") {
		t.Errorf("DialLiveURL = %q, %v", u, err)
	}
	if got := gate.RedactedURL(); got != "rtsp://admin:***@10.20.1.11:554/Streaming/Channels/101" {
		t.Errorf("RedactedURL = %q", got)
	}
	palat, _ := cfg.Camera("palat-entrance")
	if got := palat.RedactedURL(); got != "rtsp://viewer:***@10.20.2.21:554/cam/realmonitor?channel=1&subtype=0" {
		t.Errorf("RedactedURL = %q", got)
	}
	if u, _ := palat.DialLiveURL(); u != palat.URL {
		t.Errorf("DialLiveURL without live_url = %q, want url", u)
	}

	// A vendor error quoting every form of every secret comes out clean.
	vendor := "dial rtsp://viewer:Cl%40dire-2024@10.20.2.21 (Cl@dire-2024); " +
		"auth admin:p@ss/w0rd p%40ss%2Fw0rd; s3 key minio-secret-123"
	got := Redact(vendor, cfg)
	for _, s := range []string{"Cl%40dire-2024", "Cl@dire-2024", "p@ss/w0rd", "p%40ss%2Fw0rd", "minio-secret-123"} {
		if strings.Contains(got, s) {
			t.Errorf("Redact left %q in %q", s, got)
		}
	}
	if !strings.Contains(got, "viewer:***@10.20.2.21") {
		t.Errorf("Redact = %q, want the rest of the text kept", got)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := map[string]string{
		"STRAJA_LISTEN":        "[::1]:9090",
		"STRAJA_DATA_DIR":      "/srv/straja",
		"STRAJA_S3_ENDPOINT":   "127.0.0.1:9000",
		"STRAJA_S3_BUCKET":     "cctv",
		"STRAJA_S3_ACCESS_KEY": "ak",
		"STRAJA_S3_SECRET_KEY": "sk-secret",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	file := "listen: 127.0.0.1:8080\ndata_dir: /var/lib/x\nstorage:\n  backend: s3\n  s3:\n    bucket: from-file\n"
	cfg, err := parse([]byte(file), "env.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	s3 := cfg.Storage.S3
	if cfg.Listen != "[::1]:9090" || cfg.DataDir != "/srv/straja" || s3.Endpoint != "127.0.0.1:9000" ||
		s3.Bucket != "cctv" || s3.AccessKey != "ak" || s3.SecretKey != "sk-secret" {
		t.Errorf("environment not applied: %+v", cfg)
	}
	// Derived paths follow the data_dir from the environment.
	if cfg.Storage.Disk.Path != "/srv/straja/segments" || cfg.Spool.Dir != "/srv/straja/spool" {
		t.Errorf("derived dirs = %q, %q", cfg.Storage.Disk.Path, cfg.Spool.Dir)
	}

	// A bad value from the environment is blamed on the variable, not the file.
	env["STRAJA_LISTEN"] = "0.0.0.0:80"
	_, err = parse([]byte(file), "env.yaml", lookup)
	if err == nil || !strings.Contains(err.Error(), "environment variable STRAJA_LISTEN: listen: ") {
		t.Errorf("err = %v, want it to name STRAJA_LISTEN", err)
	}

	// Through the real environment too (Parse uses os.LookupEnv).
	t.Setenv("STRAJA_DATA_DIR", "rel/dir")
	cfg, err = Parse(nil, "empty.yaml")
	if err != nil || cfg.DataDir != "rel/dir" || cfg.Spool.Dir != filepath.Join("rel/dir", "spool") {
		t.Errorf("Parse(empty) = %+v, %v", cfg, err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte("# nothing set\n"), "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Storage.Backend != BackendDisk ||
		cfg.Storage.Disk.Path != filepath.Join("data", "segments") || cfg.Spool.MaxBytes != 10<<30 ||
		cfg.Recording.SegmentDuration != Duration(time.Minute) || cfg.WebRTC.UDPPort != 8189 {
		t.Errorf("defaults = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
}

// A Config built in code gets the same defaults from Validate as a loaded one.
func TestValidateFillsDefaults(t *testing.T) {
	cfg := Default()
	cfg.DataDir = "/srv/x"
	cfg.Sites = []Site{{ID: "s", Name: "S"}}
	cfg.Cameras = []Camera{{ID: "a", Name: "A", Site: "s", URL: "rtsp://h/a"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := cfg.Cameras[0]
	if cfg.Spool.Dir != "/srv/x/spool" || cfg.Storage.Disk.Path != "/srv/x/segments" ||
		c.Transport != TransportAuto || c.ReadTimeout != Duration(10*time.Second) {
		t.Errorf("after Validate: %+v", cfg)
	}
	cfg.Cameras[0].ReadTimeout = Duration(time.Hour)
	err := cfg.Validate()
	if err == nil || err.Error() != "cameras[0].read_timeout: 1h is outside the allowed range 1s to 5m" {
		t.Errorf("Validate without a file = %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Setenv("STRAJA_CAM_BASTION_GATE_PASSWORD", "pw")
	t.Setenv("STRAJA_S3_SECRET_KEY", "sk")
	for _, load := range []func() (*Config, error){Demo, func() (*Config, error) { return Load("straja.example.yaml") }} {
		cfg, err := load()
		if err != nil {
			t.Fatal(err)
		}
		cfg.WebRTC.UDPPort, cfg.WebRTC.TCPPort = 0, -1 // random, disabled: zero must survive
		b, err := Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b, "marshalled.yaml")
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if back.WebRTC.UDPPort != 0 || back.WebRTC.TCPPort != -1 {
			t.Errorf("webrtc ports after round trip = %+v", back.WebRTC)
		}
		b2, _ := Marshal(back)
		if string(b) != string(b2) {
			t.Errorf("round trip changed the config:\n%s\n---\n%s", b, b2)
		}
		if !strings.Contains(string(b), "segment_duration: ") || strings.Contains(string(b), "src") {
			t.Errorf("unexpected output:\n%s", b)
		}
	}
}

func TestRecordFalse(t *testing.T) {
	cfg, err := Parse([]byte(`
sites: [{id: s, name: S}]
cameras:
  - {id: a, name: A, site: s, url: "rtsp://h/a", record: false, transport: udp, read_timeout: 1m}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cameras[0]
	if c.Recording() || c.Transport != TransportUDP || c.ReadTimeout != Duration(time.Minute) {
		t.Errorf("camera = %+v", c)
	}
}

func TestRedactedURL(t *testing.T) {
	for _, tc := range []struct {
		cam  Camera
		want string
	}{
		{Camera{URL: "rtsp://admin:secret@10.0.0.1:554/s"}, "rtsp://admin:***@10.0.0.1:554/s"},
		{Camera{URL: "rtsp://10.0.0.1/s"}, "rtsp://10.0.0.1/s"},
		{Camera{URL: "rtsp://admin@10.0.0.1/s"}, "rtsp://admin@10.0.0.1/s"},
		{Camera{URL: "rtsp://admin@10.0.0.1/s", PasswordEnv: "X"}, "rtsp://admin:***@10.0.0.1/s"},
		{Camera{URL: "rtsps://u:p%40ss@cam.local/s?x=1"}, "rtsps://u:***@cam.local/s?x=1"},
		{Camera{URL: "rtsp://u:p#ss@cam.local:99999/s"}, "(invalid url)"},
		{Camera{}, ""},
	} {
		if got := tc.cam.RedactedURL(); got != tc.want {
			t.Errorf("RedactedURL(%q) = %q, want %q", tc.cam.URL, got, tc.want)
		}
	}
}

func TestDialURL(t *testing.T) {
	cam := Camera{ID: "gate", URL: "rtsp://admin:old@10.0.0.1/s", PasswordEnv: "STRAJA_TEST_DIAL_PW"}
	if _, err := cam.DialURL(); err == nil || !strings.Contains(err.Error(), "STRAJA_TEST_DIAL_PW is not set") {
		t.Errorf("DialURL with unset env: %v", err)
	}
	t.Setenv("STRAJA_TEST_DIAL_PW", "n3w:p@ss")
	if u, err := cam.DialURL(); err != nil || u != "rtsp://admin:n3w%3Ap%40ss@10.0.0.1/s" {
		t.Errorf("DialURL = %q, %v", u, err)
	}
	plain := Camera{URL: "rtsp://admin:pw@10.0.0.1/s"}
	if u, err := plain.DialURL(); err != nil || u != plain.URL {
		t.Errorf("DialURL without password_env = %q, %v", u, err)
	}
	broken := Camera{ID: "x", URL: "rtsp://a:s3cr#t@h:bad/"}
	if _, err := broken.DialURL(); err == nil || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("DialURL(unparsable) = %v, want an error without the password", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"10s", 10 * time.Second, "10s"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"2h0m0s", 2 * time.Hour, "2h"},
		{"90s", 90 * time.Second, "1m30s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"30d", 30 * days.Day, "30d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"1d0h0m1s", days.Day + time.Second, "1d1s"},
		{"0d", 0, "0s"},
		{"0", 0, "0s"},
		{"-1d", -days.Day, "-24h"},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || time.Duration(got) != tc.want || got.String() != tc.str {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, time.Duration(got), got, err, tc.want, tc.str)
		}
		if back, err := ParseDuration(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q via %q = %v, %v", tc.in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "10", "d", "1.5d", "1d-2h", "10 seconds", "5x", "999999999d", "1dd"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", bad, got)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		str  string
	}{
		{"1073741824", 1 << 30, "1GiB"},
		{"500MB", 500e6, "500MB"},
		{"10GiB", 10 << 30, "10GiB"},
		{"10 gib", 10 << 30, "10GiB"},
		{"1.5KiB", 1536, "1536"},
		{"2KB", 2000, "2KB"},
		{"7B", 7, "7"},
		{"0", 0, "0"},
		{"1TiB", 1 << 40, "1TiB"},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || int64(got) != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if back, err := ParseByteSize(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q via %q = %d, %v", tc.in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "GiB", "-5MB", "10 gigs", "1e9", "NaN", "Inf", "99999999999TiB", "1..2MB", "0x10"} {
		if got, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want error", bad, got)
		}
	}
}

func TestEnumsRejectUnknownWords(t *testing.T) {
	var b Backend
	if err := b.UnmarshalText([]byte("nfs")); err == nil || !strings.Contains(err.Error(), "allowed: disk, s3") {
		t.Errorf("Backend(nfs): %v", err)
	}
	var tr Transport
	if err := tr.UnmarshalText([]byte("TCP")); err == nil || !strings.Contains(err.Error(), "allowed: auto, tcp, udp") {
		t.Errorf("Transport(TCP): %v", err)
	}
	if err := tr.UnmarshalText([]byte("udp")); err != nil || tr != TransportUDP {
		t.Errorf("Transport(udp) = %q, %v", tr, err)
	}
}

// Packages that decode YAML themselves (API payloads) get the same value parsing.
func TestYAMLUnmarshalers(t *testing.T) {
	var cam Camera
	err := yaml.Unmarshal([]byte("read_timeout: 1d2h\ntransport: tcp\n"), &cam)
	if err != nil || cam.ReadTimeout != Duration(26*time.Hour) || cam.Transport != TransportTCP {
		t.Errorf("yaml.Unmarshal = %+v, %v", cam, err)
	}
	err = yaml.Unmarshal([]byte("transport: quic\n"), &cam)
	if err == nil || !strings.Contains(err.Error(), "line 1: unknown value \"quic\"") {
		t.Errorf("yaml.Unmarshal(quic) = %v", err)
	}
	var sp Spool
	if err := yaml.Unmarshal([]byte("max_bytes: 500MB\n"), &sp); err != nil || sp.MaxBytes != 500e6 {
		t.Errorf("yaml.Unmarshal(spool) = %+v, %v", sp, err)
	}
}

// TestRedactURLQuery checks that a '@' in a camera URL's query or path does not
// hide its password from Redact, and that a URL that does not parse is redacted too.
func TestRedactURLQuery(t *testing.T) {
	for _, raw := range []string{
		"rtsp://u:pw7Xq@cam.local/s?owner=ops@example",
		"rtsp://u:pw7Xq@cam.local/a@b/s",
		"rtsp://u:pw7Xq@cam.local:99999/s?owner=ops@example",
	} {
		cfg := &Config{Cameras: []Camera{{ID: "gate", URL: raw}}}
		msg := Redact(`parse "`+raw+`": failed; password pw7Xq`, cfg)
		if strings.Contains(msg, "pw7Xq") {
			t.Errorf("Redact with url %q = %q: holds the password", raw, msg)
		}
		if !strings.Contains(msg, "u:***@cam.local") {
			t.Errorf("Redact with url %q = %q: want the rest kept", raw, msg)
		}
	}
}

// TestWithoutCameraSecrets: a command that never connects to cameras accepts an
// unset password_env, but not a malformed one.
func TestWithoutCameraSecrets(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	file := func(env string) []byte {
		return []byte(`sites: [{id: bastion, name: B}]
cameras: [{id: gate, name: P, site: bastion, url: "rtsp://admin@10.0.0.5/a", password_env: ` + env + `}]`)
	}
	if _, err := parse(file("STRAJA_UNSET_PW"), "c.yaml", noEnv); err == nil || !strings.Contains(err.Error(), "STRAJA_UNSET_PW is not set") {
		t.Errorf("strict parse with password_env unset: %v", err)
	}
	if _, err := parse(file("STRAJA_UNSET_PW"), "c.yaml", noEnv, WithoutCameraSecrets()); err != nil {
		t.Errorf("parse WithoutCameraSecrets: %v", err)
	}
	if _, err := parse(file("bad-name"), "c.yaml", noEnv, WithoutCameraSecrets()); err == nil || !strings.Contains(err.Error(), "is not an environment variable name") {
		t.Errorf("parse WithoutCameraSecrets with a malformed name: %v", err)
	}
}

// export.keep: 30 days unless set; 0 (keep forever) survives loading and marshalling.
func TestExportKeep(t *testing.T) {
	cfg, err := Parse([]byte("listen: 127.0.0.1:8080\n"), "k.yaml")
	if err != nil || cfg.Export.Keep != Duration(30*24*time.Hour) {
		t.Fatalf("default export.keep = %v, %v; want 30d", cfg.Export.Keep, err)
	}
	cfg, err = Parse([]byte("export:\n  keep: 0\n"), "k.yaml")
	if err != nil || cfg.Export.Keep != 0 {
		t.Fatalf("export.keep: 0 = %v, %v; want 0 (forever)", cfg.Export.Keep, err)
	}
	b, err := Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, "m.yaml")
	if err != nil || back.Export.Keep != 0 {
		t.Errorf("export.keep 0 after a round trip = %v, %v", back.Export.Keep, err)
	}
}
