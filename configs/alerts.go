package configs

import (
	"errors"
	"fmt"
	"time"

	"github.com/straja-nvr/straja/recorder/alerts"
)

// Alerts configures alert rules and where transitions are delivered. Rules added
// through the API join these; these cannot be changed there.
type Alerts struct {
	Webhook AlertWebhook `yaml:"webhook,omitempty"`
	Rules   []AlertRule  `yaml:"rules,omitempty"`
	// TamperWindow is how far back the tamper rule's median bitrate reaches
	// (1m..24h; default 1h). It is sampled 360 times over the window (at most once a
	// second) and judged once a twelfth of the window is held.
	TamperWindow Duration `yaml:"tamper_window,omitempty"`
}

// AlertWebhook receives each alert's transitions (firing, resolved) as a JSON POST
// signed with HMAC-SHA256 in the X-Straja-Signature header.
type AlertWebhook struct {
	// URL is the http(s) address; empty sends no webhook.
	URL string `yaml:"url,omitempty"`
	// SecretEnv names the environment variable holding the signing secret (required
	// with url, or with a rule's webhook); the secret itself never appears in the file
	// or the logs.
	SecretEnv string `yaml:"secret_env,omitempty"`
	// Attempts bounds the tries of one transition (1..20; default 6), with backoff
	// from 1 s doubling up to a minute.
	Attempts int `yaml:"attempts,omitempty"`
	// Timeout bounds one attempt (1s..1m; default 10s).
	Timeout Duration `yaml:"timeout,omitempty"`
}

// AlertRule is one rule; see the alerts package for the kinds.
type AlertRule struct {
	ID   string `yaml:"id"`
	Kind string `yaml:"kind"`
	// Camera limits a camera rule to one camera; empty watches all.
	Camera string `yaml:"camera,omitempty"`
	// For is how long the condition must hold before the alert fires.
	For Duration `yaml:"for,omitempty"`
	// Threshold is seconds (recording_lag, clock_offset) or a share (spool_usage,
	// tamper); High is tamper's multiple of the median bitrate.
	Threshold float64 `yaml:"threshold,omitempty"`
	High      float64 `yaml:"high,omitempty"`
	// Webhook, if set, receives this rule's transitions instead of
	// alerts.webhook.url, signed with the same secret.
	Webhook string `yaml:"webhook,omitempty"`
}

// Rule converts r for the alerts engine.
func (r AlertRule) Rule() alerts.Rule {
	return alerts.Rule{ID: r.ID, Kind: alerts.Kind(r.Kind), Camera: r.Camera, ForS: time.Duration(r.For).Seconds(),
		Threshold: r.Threshold, High: r.High, Webhook: r.Webhook}
}

func (c *Config) fillAlertDefaults() {
	if c.Alerts.TamperWindow == 0 {
		c.Alerts.TamperWindow = Duration(time.Hour)
	}
	if c.Alerts.Webhook.Attempts == 0 {
		c.Alerts.Webhook.Attempts = 6
	}
	if c.Alerts.Webhook.Timeout == 0 {
		c.Alerts.Webhook.Timeout = Duration(10 * time.Second)
	}
}

func (c *Config) validateAlerts(bad func(path, format string, args ...any)) {
	w := c.Alerts.Webhook
	if w.URL != "" {
		if why := alerts.CheckWebhookURL(w.URL); why != "" {
			bad("alerts.webhook.url", "%s", why)
		}
		if w.SecretEnv == "" {
			bad("alerts.webhook.secret_env", "required with alerts.webhook.url: the environment variable holding the signing secret")
		}
	}
	if n := w.Attempts; n < 1 || n > 20 {
		bad("alerts.webhook.attempts", "must be 1..20, got %d", n)
	}
	if err := checkRange(w.Timeout, time.Second, time.Minute); err != "" {
		bad("alerts.webhook.timeout", "%s", err)
	}
	if err := checkRange(c.Alerts.TamperWindow, time.Minute, 24*time.Hour); err != "" {
		bad("alerts.tamper_window", "%s", err)
	}
	ids := map[string]int{}
	for i, r := range c.Alerts.Rules {
		if err := r.Rule().Check(); err != nil {
			var joined interface{ Unwrap() []error }
			list := []error{err}
			if errors.As(err, &joined) {
				list = joined.Unwrap()
			}
			for _, e := range list {
				var fe *alerts.FieldError
				if errors.As(e, &fe) {
					field := fe.Field
					if field == "for_s" {
						field = "for"
					}
					bad(fmt.Sprintf("alerts.rules[%d].%s", i, field), "%s", fe.Msg)
				}
			}
		}
		if r.Webhook != "" && w.SecretEnv == "" {
			bad(fmt.Sprintf("alerts.rules[%d].webhook", i), "needs alerts.webhook.secret_env: the environment variable holding the signing secret")
		}
		if j, dup := ids[r.ID]; dup {
			bad(fmt.Sprintf("alerts.rules[%d].id", i), "%q is also alerts.rules[%d]", r.ID, j)
		} else {
			ids[r.ID] = i
		}
	}
}
