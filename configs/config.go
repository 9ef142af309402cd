// Package configs defines Straja's configuration: its schema, defaults, environment
// overrides and validation, plus the demo and example YAML files.
//
// Errors name the file, line and field ("straja.yaml:14: cameras[2].url: scheme must
// be rtsp or rtsps") and never contain a camera password or the S3 secret key.
package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one Straja process.
type Config struct {
	// Listen is the HTTP host:port. An address other machines can reach needs TLS
	// or InsecurePlainHTTP: users sign in, and their passwords and cookies must not
	// cross the network in clear without someone choosing so.
	Listen string `yaml:"listen,omitempty"`
	// TLS, when set, makes the service answer HTTPS only.
	TLS TLS `yaml:"tls,omitempty"`
	// InsecurePlainHTTP permits a non-loopback Listen without TLS, on a network
	// trusted not to be sniffed; the service warns at every start.
	InsecurePlainHTTP bool `yaml:"insecure_plain_http,omitempty"`
	// PublicHosts are the names (or IPs) browsers use to reach the service besides
	// the listen host and localhost. Any other Host header is refused with 421, so a
	// web page cannot reach the API through DNS rebinding.
	PublicHosts []string `yaml:"public_hosts,omitempty"`
	// DataDir holds the catalog and, by default, the spool and disk segments.
	DataDir   string    `yaml:"data_dir,omitempty"`
	Storage   Storage   `yaml:"storage,omitempty"`
	Spool     Spool     `yaml:"spool,omitempty"`
	Recording Recording `yaml:"recording,omitempty"`
	WebRTC    WebRTC    `yaml:"webrtc,omitempty"`
	State     State     `yaml:"state,omitempty"`
	Audit     Audit     `yaml:"audit,omitempty"`
	Auth      Auth      `yaml:"auth,omitempty"`
	Metrics   Metrics   `yaml:"metrics,omitempty"`
	Export    Export    `yaml:"export,omitempty"`
	Retention Retention `yaml:"retention,omitempty"`
	Alerts    Alerts    `yaml:"alerts,omitempty"`
	Sites     []Site    `yaml:"sites,omitempty"`
	Cameras   []Camera  `yaml:"cameras,omitempty"`

	src *source // where each field came from, for error messages
}

// Storage selects and configures where finished segments are kept.
type Storage struct {
	Backend Backend     `yaml:"backend,omitempty"`
	Disk    DiskStorage `yaml:"disk,omitempty"`
	S3      S3Storage   `yaml:"s3,omitempty"`
}

// DiskStorage keeps segments in a local directory.
type DiskStorage struct {
	// Path defaults to <data_dir>/segments (filled in by Validate).
	Path string `yaml:"path,omitempty"`
}

// S3Storage keeps segments in an S3-compatible bucket such as MinIO.
type S3Storage struct {
	// Endpoint is host[:port], without a scheme; TLS selects https.
	Endpoint string `yaml:"endpoint,omitempty"`
	Bucket   string `yaml:"bucket,omitempty"`
	// Prefix is prepended to every object key, e.g. "straja/".
	Prefix    string `yaml:"prefix,omitempty"`
	AccessKey string `yaml:"access_key,omitempty"`
	SecretKey string `yaml:"secret_key,omitempty"`
	Region    string `yaml:"region,omitempty"`
	TLS       bool   `yaml:"tls,omitempty"`
}

// Spool is the local buffer where segments are written before upload.
type Spool struct {
	// Dir defaults to <data_dir>/spool (filled in by Validate).
	Dir string `yaml:"dir,omitempty"`
	// MaxBytes bounds the spool while storage is unreachable.
	MaxBytes ByteSize `yaml:"max_bytes,omitempty"`
}

// Recording sets the shape of recorded files.
type Recording struct {
	// SegmentDuration is the target length of one stored object (2s..1h).
	SegmentDuration Duration `yaml:"segment_duration,omitempty"`
	// FragmentDuration is the target length of one fMP4 fragment, the most a crash
	// can lose (100ms..SegmentDuration).
	FragmentDuration Duration `yaml:"fragment_duration,omitempty"`
}

// WebRTC configures live view.
type WebRTC struct {
	// UDPPort is the one UDP port for all media; 0 picks a random port.
	UDPPort int `yaml:"udp_port"`
	// TCPPort is the ICE-TCP port used when UDP is blocked; 0 picks a random
	// port, -1 disables ICE-TCP.
	TCPPort int `yaml:"tcp_port"`
	// HostAddresses are public IPs announced instead of local ones (NAT 1:1).
	HostAddresses []string `yaml:"host_addresses,omitempty"`
	// STUNServers are "stun:host:port" URLs.
	STUNServers []string `yaml:"stun_servers,omitempty"`
	// MaxSessions bounds open live sessions, server-wide (1..10000).
	MaxSessions int `yaml:"max_sessions,omitempty"`
	// MaxSessionsPerClient bounds the live sessions of one client IP address
	// (1..max_sessions).
	MaxSessionsPerClient int `yaml:"max_sessions_per_client,omitempty"`
	// MaxSessionDuration ends a live session after this long (the page reconnects);
	// 0 means no limit, otherwise 1m..30d.
	MaxSessionDuration Duration `yaml:"max_session_duration"`
}

// State configures the state database (data_dir/state.db: what storage cannot
// rebuild) and its backups into the store.
type State struct {
	// BackupSchedule is when the state database is backed up: a five-field cron spec
	// ("30 3 * * *", UTC unless prefixed "CRON_TZ=Europe/Bucharest ") or a
	// descriptor (@daily, @hourly, @every 6h). Default @daily.
	BackupSchedule string `yaml:"backup_schedule,omitempty"`
	// BackupKeep is how many backups are kept, the newest (1..10000; 0 means the
	// default, 14).
	BackupKeep int `yaml:"backup_keep,omitempty"`
}

// Audit configures the audit trail (in the state database).
type Audit struct {
	// AnchorInterval is how often the chain head is copied into the store, so that
	// an edit to the database that recomputes the chain is still caught (1m..1h;
	// default 5m). The head is also stored at shutdown.
	AnchorInterval Duration `yaml:"anchor_interval,omitempty"`
}

// Auth configures sign-in sessions and what a guard may play back.
type Auth struct {
	// SessionIdle ends a session unused this long (1m..24h; default 30m).
	SessionIdle Duration `yaml:"session_idle,omitempty"`
	// SessionMax ends a session this long after sign-in, used or not (at least
	// session_idle, at most 30d; default 12h, one guard shift).
	SessionMax Duration `yaml:"session_max,omitempty"`
	// GuardLookback is how far back a guard may play footage (1h..365d; default 7d).
	GuardLookback Duration `yaml:"guard_lookback,omitempty"`
}

// TLS names the certificate and private key the service answers HTTPS with: both
// or neither. They must parse as a pair when the config is validated.
type TLS struct {
	// CertFile is a PEM certificate chain, the server's first.
	CertFile string `yaml:"cert_file,omitempty"`
	// KeyFile is the PEM private key of the first certificate.
	KeyFile string `yaml:"key_file,omitempty"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Metrics configures how Prometheus reaches /metrics.
type Metrics struct {
	// Token, when set, is the bearer token /metrics on the main listener asks for
	// (at least 16 characters). A secret: never logged or shown.
	Token string `yaml:"token,omitempty"`
	// Listen, when set, is a loopback host:port serving only /metrics, without a
	// token, for a Prometheus on the same machine.
	Listen string `yaml:"listen,omitempty"`
}

// Retention configures how long footage is kept and what keeps the disk from filling.
type Retention struct {
	// Timezone is the zone policies' cron schedules are read in (default
	// Europe/Bucharest).
	Timezone string `yaml:"timezone,omitempty"`
	// SafetyStopPercent is the share of a camera's footage (1..100, default 50) a run
	// may delete beyond what its policy's age implies before it stops for that camera
	// (a clock jump); a forced run overrides.
	SafetyStopPercent int `yaml:"safety_stop_percent,omitempty"`
	// MinFree is the free space ("10%" or a size such as 20GB) the disk backend's
	// file system keeps (with the spool, when on the same disk): below it the
	// oldest unheld footage is deleted at once. Unset: no guard.
	MinFree FreeSpace `yaml:"min_free,omitempty"`
	// GuardInterval is how often free space is checked (1s..10m; default 10s).
	GuardInterval Duration `yaml:"guard_interval,omitempty"`
	// MaxBytes, with the s3 backend, bounds the bucket's footage in total: beyond it
	// the oldest unheld footage is deleted. 0: no bound.
	MaxBytes ByteSize `yaml:"max_bytes,omitempty"`
	// Policies say how long each camera's footage is kept; a camera no policy names
	// keeps 30 days (the "default" policy, which the file may redefine).
	Policies []RetentionPolicy `yaml:"policies,omitempty"`
}

// RetentionPolicy is one retention policy of the file; these cannot be changed
// through the API.
type RetentionPolicy struct {
	// Name is 1..48 characters of [a-z0-9-]; "default" covers unnamed cameras.
	Name string `yaml:"name,omitempty"`
	// Sites and Cameras the policy covers: a camera's own policy wins over its site's.
	Sites   []string `yaml:"sites,omitempty"`
	Cameras []string `yaml:"cameras,omitempty"`
	// MaxAge is how long footage is kept (any positive duration: 30d, 12h, 90s).
	MaxAge Duration `yaml:"max_age,omitempty"`
	// MaxBytes optionally bounds each covered camera's footage.
	MaxBytes ByteSize `yaml:"max_bytes,omitempty"`
	// Schedule is a cron spec or descriptor (default @hourly).
	Schedule string `yaml:"schedule,omitempty"`
	// Justification is required when MaxAge is over 30 days (Legea 190/2018).
	Justification string `yaml:"justification,omitempty"`
}

// Site is a building or location that groups cameras.
type Site struct {
	// ID is 1..32 characters of [a-z0-9-], unique.
	ID   string `yaml:"id,omitempty"`
	Name string `yaml:"name,omitempty"`
}

// Camera is one RTSP source.
type Camera struct {
	// ID becomes part of object keys and paths: 1..48 characters of [a-z0-9-]
	// starting with a letter or digit, unique.
	ID   string `yaml:"id,omitempty"`
	Name string `yaml:"name,omitempty"`
	// Site is the ID of a configured site.
	Site string `yaml:"site,omitempty"`
	// URL is rtsp:// or rtsps://, possibly with user:password. Never log it: use
	// RedactedURL.
	URL string `yaml:"url,omitempty"`
	// PasswordEnv names an environment variable holding the camera password; it
	// replaces any password in URL and LiveURL.
	PasswordEnv string `yaml:"password_env,omitempty"`
	// Transport defaults to auto.
	Transport Transport `yaml:"transport,omitempty"`
	// Record is nil when unset; use Recording.
	Record *bool `yaml:"record,omitempty"`
	// LiveURL is an optional H.264 substream for live view, with the same rules as URL.
	LiveURL string `yaml:"live_url,omitempty"`
	// ReadTimeout is how long a silent camera is trusted before reconnecting
	// (1s..5m; 0 means the default, 10s).
	ReadTimeout Duration `yaml:"read_timeout,omitempty"`
}

// Recording reports whether the camera is recorded (default true) rather than only
// shown live.
func (c Camera) Recording() bool { return c.Record == nil || *c.Record }

// Backend names a storage backend.
type Backend string

// Storage backends.
const (
	BackendDisk Backend = "disk"
	BackendS3   Backend = "s3"
)

// UnmarshalText implements encoding.TextUnmarshaler and rejects unknown backends.
func (b *Backend) UnmarshalText(t []byte) error { return parseEnum(b, t, BackendDisk, BackendS3) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Backend) UnmarshalYAML(n *yaml.Node) error { return unmarshalScalar(n, b) }

// Transport is how RTP travels from a camera.
type Transport string

// RTSP transports. Auto tries UDP and falls back to TCP.
const (
	TransportAuto Transport = "auto"
	TransportTCP  Transport = "tcp"
	TransportUDP  Transport = "udp"
)

// UnmarshalText implements encoding.TextUnmarshaler and rejects unknown transports.
func (t *Transport) UnmarshalText(b []byte) error {
	return parseEnum(t, b, TransportAuto, TransportTCP, TransportUDP)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Transport) UnmarshalYAML(n *yaml.Node) error { return unmarshalScalar(n, t) }

func parseEnum[T ~string](dst *T, b []byte, allowed ...T) error {
	if i := slices.Index(allowed, T(b)); i >= 0 {
		*dst = allowed[i]
		return nil
	}
	words := make([]string, len(allowed))
	for i, a := range allowed {
		words[i] = string(a)
	}
	return fmt.Errorf("unknown value %q (allowed: %s)", b, strings.Join(words, ", "))
}

// Default returns the configuration used for every field the file and the
// environment leave unset.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		DataDir:   "./data",
		Storage:   Storage{Backend: BackendDisk},
		Spool:     Spool{MaxBytes: 10 << 30},
		Recording: Recording{SegmentDuration: Duration(time.Minute), FragmentDuration: Duration(time.Second)},
		WebRTC: WebRTC{UDPPort: 8189, TCPPort: 8189, MaxSessions: 256, MaxSessionsPerClient: 32,
			MaxSessionDuration: Duration(12 * time.Hour)},
		State: State{BackupSchedule: "@daily", BackupKeep: 14},
		Audit: Audit{AnchorInterval: Duration(5 * time.Minute)},
		Auth: Auth{SessionIdle: Duration(30 * time.Minute), SessionMax: Duration(12 * time.Hour),
			GuardLookback: Duration(7 * 24 * time.Hour)},
		Export:    defaultExport(),
		Retention: Retention{Timezone: "Europe/Bucharest", SafetyStopPercent: 50, GuardInterval: Duration(10 * time.Second)},
	}
}

// Load reads the configuration file at path: defaults, then the file, then the
// STRAJA_* environment variables, then Validate. Options relax what a command that
// uses only part of the configuration needs.
func Load(path string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, opts...)
}

// Parse is Load for data already in memory; name is used in error messages.
func Parse(data []byte, name string, opts ...Option) (*Config, error) {
	return parse(data, name, os.LookupEnv, opts...)
}

// Option changes what Load and Parse require.
type Option func(*source)

// WithoutCameraSecrets accepts cameras whose password_env variable is not set, for
// commands that never connect to a camera (catalog rebuild needs only the store).
// The variable's name is still checked.
func WithoutCameraSecrets() Option { return func(s *source) { s.noCameraSecrets = true } }

// Environment variables that override the file.
var envVars = []struct {
	name, path string
	field      func(*Config) *string
}{
	{"STRAJA_LISTEN", "listen", func(c *Config) *string { return &c.Listen }},
	{"STRAJA_DATA_DIR", "data_dir", func(c *Config) *string { return &c.DataDir }},
	{"STRAJA_S3_ENDPOINT", "storage.s3.endpoint", func(c *Config) *string { return &c.Storage.S3.Endpoint }},
	{"STRAJA_S3_BUCKET", "storage.s3.bucket", func(c *Config) *string { return &c.Storage.S3.Bucket }},
	{"STRAJA_S3_ACCESS_KEY", "storage.s3.access_key", func(c *Config) *string { return &c.Storage.S3.AccessKey }},
	{"STRAJA_S3_SECRET_KEY", "storage.s3.secret_key", func(c *Config) *string { return &c.Storage.S3.SecretKey }},
	{"STRAJA_METRICS_TOKEN", "metrics.token", func(c *Config) *string { return &c.Metrics.Token }},
}

func parse(data []byte, name string, lookupEnv func(string) (string, bool), opts ...Option) (*Config, error) {
	cfg := Default()
	cfg.src = &source{file: name, lines: map[string]int{}, env: map[string]string{}, lookup: lookupEnv}
	for _, o := range opts {
		o(cfg.src)
	}
	derr := decodeYAML(data, &cfg)
	for _, e := range envVars {
		if v, ok := lookupEnv(e.name); ok && v != "" {
			*e.field(&cfg) = v
			cfg.src.env[e.path] = e.name
		}
	}
	if err := cfg.check(derr); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// SetByFlag records that the field at path (such as "listen") was set from the
// command-line flag named flag (without dashes), so that errors about it name the
// flag rather than the file.
func (c *Config) SetByFlag(path, flag string) {
	if c.src == nil {
		c.src = &source{}
	}
	if c.src.flags == nil {
		c.src.flags = map[string]string{}
	}
	c.src.flags[path] = flag
}

// fillDefaults sets the fields whose zero value means "default" and whose default
// depends on other fields, so that a Config built in code works like a loaded one.
func (c *Config) fillDefaults() {
	c.fillAlertDefaults()
	if c.Storage.Disk.Path == "" && c.DataDir != "" {
		c.Storage.Disk.Path = filepath.Join(c.DataDir, "segments")
	}
	if c.Spool.Dir == "" && c.DataDir != "" {
		c.Spool.Dir = filepath.Join(c.DataDir, "spool")
	}
	if c.State.BackupSchedule == "" {
		c.State.BackupSchedule = "@daily"
	}
	if c.State.BackupKeep == 0 {
		c.State.BackupKeep = 14
	}
	if c.Audit.AnchorInterval == 0 {
		c.Audit.AnchorInterval = Duration(5 * time.Minute)
	}
	if c.Auth.SessionIdle == 0 {
		c.Auth.SessionIdle = Duration(30 * time.Minute)
	}
	if c.Auth.SessionMax == 0 {
		c.Auth.SessionMax = Duration(12 * time.Hour)
	}
	if c.Auth.GuardLookback == 0 {
		c.Auth.GuardLookback = Duration(7 * 24 * time.Hour)
	}
	if c.Retention.Timezone == "" {
		c.Retention.Timezone = "Europe/Bucharest"
	}
	if c.Retention.SafetyStopPercent == 0 {
		c.Retention.SafetyStopPercent = 50
	}
	if c.Retention.GuardInterval == 0 {
		c.Retention.GuardInterval = Duration(10 * time.Second)
	}
	for i := range c.Retention.Policies {
		if p := &c.Retention.Policies[i]; p.Schedule == "" {
			p.Schedule = "@hourly"
		}
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Transport == "" {
			cam.Transport = TransportAuto
		}
		if cam.ReadTimeout == 0 {
			cam.ReadTimeout = Duration(10 * time.Second)
		}
	}
}

// Marshal encodes cfg as YAML that Load reads back to the same configuration.
// The output holds cfg's secrets: write it only where the original file may be.
func Marshal(cfg *Config) ([]byte, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b, nil
}

// Camera returns the camera with the given ID.
func (c *Config) Camera(id string) (Camera, bool) {
	for _, cam := range c.Cameras {
		if cam.ID == id {
			return cam, true
		}
	}
	return Camera{}, false
}
