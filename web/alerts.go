package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/web/audit"
)

// AlertBoard is the alerting engine as the API uses it (*alerts.Engine).
type AlertBoard interface {
	Rules() []alerts.Rule
	PutRule(ctx context.Context, r alerts.Rule) (created bool, err error)
	DeleteRule(ctx context.Context, id string) error
	// Webhooks reports whether a rule may name a webhook (a signing secret is set).
	Webhooks() bool
	Active() []alerts.Alert
	Recent(ctx context.Context, limit int) ([]alerts.Alert, error)
}

// Limits of the alert history listing.
const (
	defaultRecentAlerts = 100
	maxRecentAlerts     = 1000
)

// handleAlerts answers {"active": [...], "recent": [...]}: the firing alerts, and
// the latest of the history (?limit=, default 100), newest first.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.alerts == nil {
		return errorf(errNotFound, "alerting is not running")
	}
	limit := defaultRecentAlerts
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRecentAlerts {
			return &FieldError{"limit", fmt.Sprintf("must be a whole number from 1 to %d", maxRecentAlerts)}
		}
		limit = n
	}
	recent, err := s.alerts.Recent(r.Context(), limit)
	if err != nil {
		return err
	}
	if recent == nil {
		recent = []alerts.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"active": s.alerts.Active(), "recent": recent})
	return nil
}

// handleAlertRules lists every rule: the configuration's (source "config", read
// only) and the API's.
func (s *Server) handleAlertRules(w http.ResponseWriter, r *http.Request) error {
	if s.alerts == nil {
		return errorf(errNotFound, "alerting is not running")
	}
	writeJSON(w, http.StatusOK, s.alerts.Rules())
	return nil
}

// alertRuleBody is a rule as PUT sends it; the ID is the path's.
type alertRuleBody struct {
	ID        string      `json:"id"`
	Kind      alerts.Kind `json:"kind"`
	Camera    string      `json:"camera"`
	ForS      float64     `json:"for_s"`
	Threshold float64     `json:"threshold"`
	High      float64     `json:"high"`
	Webhook   string      `json:"webhook"`
	Source    string      `json:"source"` // ignored: rules from the API are "api"
}

// handlePutAlertRule adds or replaces an API rule: 201 when new, 200 when replaced.
func (s *Server) handlePutAlertRule(w http.ResponseWriter, r *http.Request) error {
	if s.alerts == nil {
		return errorf(errNotFound, "alerting is not running")
	}
	id := r.PathValue("rule")
	var b alertRuleBody
	if err := decodeJSON(r, &b); err != nil {
		return err
	}
	if b.ID != "" && b.ID != id {
		return &FieldError{"id", "must be the rule in the path, or left out"}
	}
	rule := alerts.Rule{ID: id, Kind: b.Kind, Camera: b.Camera, ForS: b.ForS, Threshold: b.Threshold, High: b.High,
		Webhook: b.Webhook}
	if err := rule.Check(); err != nil {
		return ruleFieldError(err)
	}
	if rule.Webhook != "" && !s.alerts.Webhooks() {
		return &FieldError{"webhook", "no signing secret is configured (alerts.webhook.secret_env), so no webhook can be sent"}
	}
	if rule.Camera != "" {
		if _, ok := s.cams.Camera(rule.Camera); !ok {
			return &FieldError{"camera", fmt.Sprintf("no camera %q", rule.Camera)}
		}
	}
	for _, cur := range s.alerts.Rules() {
		if cur.ID == id && cur.Source == alerts.SourceConfig {
			return alerts.ErrReadOnly
		}
	}
	if err := s.record(r, audit.Event{Action: audit.ActionAlertRulePut, Camera: rule.Camera,
		Detail: map[string]any{"rule": rule.ID, "kind": rule.Kind, "for_s": rule.ForS, "threshold": rule.Threshold,
			"high": rule.High, "webhook_host": webhookHost(rule.Webhook)}}); err != nil {
		return err
	}
	created, err := s.alerts.PutRule(r.Context(), rule)
	if err != nil {
		return ruleFieldError(err)
	}
	rule.Source = alerts.SourceAPI
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, rule)
	return nil
}

// handleDeleteAlertRule deletes an API rule; its firing alerts resolve.
func (s *Server) handleDeleteAlertRule(w http.ResponseWriter, r *http.Request) error {
	if s.alerts == nil {
		return errorf(errNotFound, "alerting is not running")
	}
	id := r.PathValue("rule")
	if !ruleExists(s.alerts.Rules(), id) {
		return errorf(errNotFound, "no alert rule %q", truncate(id, 64))
	}
	for _, cur := range s.alerts.Rules() {
		if cur.ID == id && cur.Source == alerts.SourceConfig {
			return alerts.ErrReadOnly
		}
	}
	if err := s.record(r, audit.Event{Action: audit.ActionAlertRuleDelete, Detail: map[string]any{"rule": id}}); err != nil {
		return err
	}
	if err := s.alerts.DeleteRule(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func ruleExists(rules []alerts.Rule, id string) bool {
	for _, r := range rules {
		if r.ID == id {
			return true
		}
	}
	return false
}

// ruleFieldError turns the first of a rule's field errors into the API's.
func ruleFieldError(err error) error {
	var fe *alerts.FieldError
	if errors.As(err, &fe) {
		return &FieldError{fe.Field, fe.Msg}
	}
	return err
}

// webhookHost is the host a webhook URL posts to, for the audit trail: its path or
// query may carry a token.
func webhookHost(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}
