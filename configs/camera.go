package configs

import (
	"cmp"
	"fmt"
	"net/url"
	"os"

	"github.com/straja-nvr/straja/internal/redact"
)

// RedactedURL returns URL with any password replaced by "***", for logs and API
// responses.
func (c Camera) RedactedURL() string { return c.redact(c.URL) }

// RedactedLiveURL is RedactedURL for LiveURL ("" when there is no substream).
func (c Camera) RedactedLiveURL() string { return c.redact(c.LiveURL) }

// redact masks raw's password; with PasswordEnv the URL shows one is applied.
func (c Camera) redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && c.PasswordEnv != "" && u.User != nil {
		u.User = url.UserPassword(u.User.Username(), redact.Mask)
		raw = u.String()
	}
	return redact.URL(raw)
}

// DialURL returns URL with the password from PasswordEnv applied, for the RTSP
// client only: never log it.
func (c Camera) DialURL() (string, error) { return c.dial(c.URL, os.LookupEnv) }

// DialLiveURL is DialURL for the live-view stream: LiveURL, or URL when the camera
// has no substream.
func (c Camera) DialLiveURL() (string, error) {
	return c.dial(cmp.Or(c.LiveURL, c.URL), os.LookupEnv)
}

func (c Camera) dial(raw string, lookupEnv func(string) (string, bool)) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("camera %s: url cannot be parsed", c.ID) // err would echo the password
	}
	if c.PasswordEnv == "" {
		return raw, nil
	}
	pw, ok := lookupEnv(c.PasswordEnv)
	if !ok {
		return "", fmt.Errorf("camera %s: environment variable %s is not set", c.ID, c.PasswordEnv)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), nil
}

// checkCameraURL returns what is wrong with an RTSP URL, without quoting it.
func checkCameraURL(raw string, passwordEnv bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "cannot be parsed (percent-encode special characters in the password, e.g. @ as %40)"
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return "scheme must be rtsp or rtsps"
	case u.Opaque != "" || u.Hostname() == "":
		return "host is required (rtsp://host[:port]/path)"
	case passwordEnv && u.User.Username() == "":
		return "needs a user name (rtsp://user@host/...) for password_env"
	}
	return ""
}

// Redact replaces every secret of cfg (camera passwords, from URLs or their
// environment variables, the S3 secret key and the metrics token) in s with "***", and the password
// of any URL in s. Use it on any text, such as a vendor error, before logging or
// showing it.
func Redact(s string, cfg *Config) string {
	if cfg == nil {
		return redact.String(s, nil)
	}
	return redact.String(s, cfg.secrets())
}

// secrets lists the secrets in c in every form they may be written.
func (c *Config) secrets() []string {
	out := redact.Forms(c.Storage.S3.SecretKey)
	out = append(out, redact.Forms(c.Metrics.Token)...)
	for _, cam := range c.Cameras {
		out = append(out, redact.Passwords(cam.URL)...)
		out = append(out, redact.Passwords(cam.LiveURL)...)
		if cam.PasswordEnv != "" {
			pw, _ := c.lookupEnv(cam.PasswordEnv)
			out = append(out, redact.Forms(pw)...)
		}
	}
	return out
}

func (c *Config) lookupEnv(name string) (string, bool) {
	if c.src != nil && c.src.lookup != nil {
		return c.src.lookup(name)
	}
	return os.LookupEnv(name)
}
