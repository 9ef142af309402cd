// Package alerts watches the service's health figures against alert rules (from the
// configuration and from the API) and says when an alert fires and when it resolves:
// once per transition, to a webhook (JSON signed with HMAC-SHA256, retried with
// backoff), to the live event bus, to the state database's history and as the
// straja_alert_firing metric, so Alertmanager setups work too.
package alerts

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// Kind is what a rule watches.
type Kind string

// Rule kinds.
const (
	// KindCameraOffline: a camera not online for For.
	KindCameraOffline Kind = "camera_offline"
	// KindRecordingLag: a recording camera's capture-to-durable lag above Threshold
	// seconds for For.
	KindRecordingLag Kind = "recording_lag"
	// KindSpoolUsage: the spool above Threshold (a share, 0..1) of its cap for For.
	KindSpoolUsage Kind = "spool_usage"
	// KindStoreUnreachable: the store failing probes or uploads for For.
	KindStoreUnreachable Kind = "store_unreachable"
	// KindRetentionStopped: a retention policy stopped itself (it would have deleted
	// far more than expected) until a later run succeeds.
	KindRetentionStopped Kind = "retention_stopped"
	// KindClockOffset: a camera's clock (RTCP sender reports) more than Threshold
	// seconds off the local clock for For.
	KindClockOffset Kind = "clock_offset"
	// KindTamper: a camera's bitrate below Threshold times its own median over the
	// last hour (lens covered or sprayed, camera turned to a wall), or above High
	// times it (lens knocked, scene flooded with noise), for For. No decoding needed.
	KindTamper Kind = "tamper"
)

// Kinds lists every rule kind.
var Kinds = []Kind{KindCameraOffline, KindRecordingLag, KindSpoolUsage, KindStoreUnreachable, KindRetentionStopped,
	KindClockOffset, KindTamper}

// perCamera says whether a kind is judged per camera.
func (k Kind) perCamera() bool {
	switch k {
	case KindCameraOffline, KindRecordingLag, KindClockOffset, KindTamper:
		return true
	}
	return false
}

// Sources of a rule.
const (
	SourceConfig = "config"
	SourceAPI    = "api"
)

// Rule is one alert rule.
type Rule struct {
	// ID names the rule: 1..64 characters of [a-z0-9-_].
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Camera limits a per-camera rule to one camera; "" watches every camera.
	Camera string `json:"camera,omitempty"`
	// ForS is how many seconds the condition must hold before the alert fires.
	ForS float64 `json:"for_s"`
	// Threshold is seconds (recording_lag, clock_offset) or a share (spool_usage:
	// of the cap; tamper: of the median bitrate).
	Threshold float64 `json:"threshold,omitempty"`
	// High is, for tamper, the multiple of the median bitrate above which the
	// camera is also judged tampered with (0: never).
	High float64 `json:"high,omitempty"`
	// Webhook, if set, receives this rule's transitions instead of the default
	// webhook (alerts.webhook.url), signed with the same secret.
	Webhook string `json:"webhook,omitempty"`
	// Source is where the rule comes from: config (read only) or api. Set by the engine.
	Source string `json:"source"`
}

// For is ForS as a duration.
func (r Rule) For() time.Duration { return time.Duration(r.ForS * float64(time.Second)) }

// FieldError is a bad rule field, named as the API and the configuration name it.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// maxFor bounds ForS: a day.
const maxFor = 24 * 60 * 60

// Check returns what is wrong with r, each problem a *FieldError naming its field.
func (r Rule) Check() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{field, fmt.Sprintf(format, args...)})
	}
	if !ruleID.MatchString(r.ID) {
		bad("id", "must be 1 to 64 characters of a-z, 0-9, - and _, starting with a letter or digit")
	}
	known := false
	for _, k := range Kinds {
		known = known || r.Kind == k
	}
	if !known {
		bad("kind", "%q is not one of camera_offline, recording_lag, spool_usage, store_unreachable, "+
			"retention_stopped, clock_offset, tamper", r.Kind)
	}
	if r.Camera != "" {
		if !r.Kind.perCamera() && known {
			bad("camera", "a %s rule watches the whole service, not a camera", r.Kind)
		} else if err := storage.CheckCameraID(r.Camera); err != nil {
			bad("camera", "%v", err)
		}
	}
	if !(r.ForS >= 0 && r.ForS <= maxFor) { // NaN too
		bad("for_s", "must be 0 to %d seconds", maxFor)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold", "must be a number")
	}
	switch r.Kind {
	case KindRecordingLag, KindClockOffset:
		if !(r.Threshold > 0 && r.Threshold <= maxFor) {
			bad("threshold", "seconds: must be more than 0 and at most %d", maxFor)
		}
	case KindSpoolUsage:
		if !(r.Threshold > 0 && r.Threshold <= 1) {
			bad("threshold", "a share of the spool's cap: must be more than 0 and at most 1 (0.8 is 80%%)")
		}
	case KindTamper:
		if !(r.Threshold > 0 && r.Threshold < 1) {
			bad("threshold", "a share of the camera's median bitrate: must be more than 0 and less than 1 (0.3 is 30%%)")
		}
		if r.High != 0 && !(r.High > 1 && r.High <= 100) {
			bad("high", "a multiple of the camera's median bitrate: 0 (off) or more than 1, at most 100")
		}
	}
	if r.Webhook != "" {
		if why := CheckWebhookURL(r.Webhook); why != "" {
			bad("webhook", "%s", why)
		}
	}
	if r.Kind != KindTamper && r.High != 0 {
		bad("high", "only tamper rules have one")
	}
	return errors.Join(errs...)
}
