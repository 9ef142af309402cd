package configs

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// redacted replaces secrets in URLs and messages.
const redacted = "***"

// RedactedURL returns URL with any password replaced by "***", for logs and API
// responses.
func (c Camera) RedactedURL() string { return c.redact(c.URL) }

// RedactedLiveURL is RedactedURL for LiveURL ("" when there is no substream).
func (c Camera) RedactedLiveURL() string { return c.redact(c.LiveURL) }

func (c Camera) redact(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	_, has := u.User.Password()
	if !has && (c.PasswordEnv == "" || u.User == nil) {
		return u.String()
	}
	user := url.User(u.User.Username()).String()
	u.User = nil
	// Built by hand: url.URL.String would escape the asterisks.
	return u.Scheme + "://" + user + ":" + redacted + "@" + strings.TrimPrefix(u.String(), u.Scheme+"://")
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
// environment variables, and the S3 secret key) in s with "***". Use it on any
// text, such as a vendor error, before logging or showing it.
func Redact(s string, cfg *Config) string {
	if cfg == nil {
		return s
	}
	for _, secret := range cfg.secrets() {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// secrets lists the secrets in c, longest first so that a secret containing
// another is replaced whole.
func (c *Config) secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" && s != redacted {
			out = append(out, s)
		}
	}
	add(c.Storage.S3.SecretKey)
	for _, cam := range c.Cameras {
		for _, raw := range []string{cam.URL, cam.LiveURL} {
			pw := rawPassword(raw)
			add(pw)
			if dec, err := url.PathUnescape(pw); err == nil {
				add(dec)
			}
		}
		if cam.PasswordEnv != "" {
			pw, _ := c.lookupEnv(cam.PasswordEnv)
			add(pw)
			add(url.PathEscape(pw))
			add(url.UserPassword("", pw).String()[1:]) // userinfo escaping, as DialURL writes it
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return slices.Compact(out)
}

// rawPassword finds the password in a URL by plain string search, so that even a
// URL that does not parse gets its password redacted.
func rawPassword(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

func (c *Config) lookupEnv(name string) (string, bool) {
	if c.src != nil && c.src.lookup != nil {
		return c.src.lookup(name)
	}
	return os.LookupEnv(name)
}
