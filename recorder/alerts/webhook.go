package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body under the
// webhook secret; a receiver recomputes it over the bytes it received.
const SignatureHeader = "X-Straja-Signature"

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	// URL is the http(s) address transitions are POSTed to, unless their rule names
	// its own; "" sends only those of rules that do.
	URL string
	// Secret keys the HMAC-SHA256 signature. It is never logged.
	Secret []byte
	// Timeout bounds one attempt (0: 10 s).
	Timeout time.Duration
	// Attempts bounds the tries of one transition (0: 6); Backoff is the wait after
	// the first failure, doubling up to a minute (0: 1 s).
	Attempts int
	Backoff  time.Duration
	// Client sends the requests (nil: one that follows no redirect).
	Client *http.Client
}

// Payload is the JSON body of a webhook POST.
type Payload struct {
	Status Status    `json:"status"` // firing or resolved
	Alert  Alert     `json:"alert"`
	Sent   time.Time `json:"sent"`
}

// Webhook delivers transitions one at a time, in order, each until it is accepted
// (2xx), refused for good (4xx other than 408 and 429) or out of attempts.
type Webhook struct {
	opts    WebhookOptions
	log     *slog.Logger
	queue   chan delivery
	results *prometheus.CounterVec
}

// webhookQueue bounds the transitions waiting for delivery.
const webhookQueue = 256

// CheckWebhookURL says what is wrong with a webhook URL, "" if nothing.
func CheckWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "required"
	case err != nil:
		return "cannot be parsed"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Host == "":
		return "host is required"
	case u.User != nil:
		return "must not hold credentials: the body is signed with secret_env's secret"
	}
	return ""
}

// NewWebhook returns a webhook and registers its delivery counter on reg.
func NewWebhook(opts WebhookOptions, reg prometheus.Registerer, log *slog.Logger) (*Webhook, error) {
	if opts.URL != "" {
		if why := CheckWebhookURL(opts.URL); why != "" {
			return nil, fmt.Errorf("alerts.webhook.url: %s", why)
		}
	}
	if len(opts.Secret) == 0 {
		return nil, fmt.Errorf("alerts.webhook.secret_env: the secret is empty")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Webhook{opts: opts, log: log, queue: make(chan delivery, webhookQueue),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straja_alert_webhook_total",
			Help: "Alert webhook deliveries, by result (ok, retry, failed, dropped)."}, []string{"result"})}
	if reg != nil {
		if err := reg.Register(w.results); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// delivery is one transition for one receiver.
type delivery struct {
	url   string
	alert Alert
}

// enqueue queues a transition for its rule's receiver, or the default one; never
// blocks. A full queue drops it (and says so).
func (w *Webhook) enqueue(a Alert) {
	url := a.hook
	if url == "" {
		url = w.opts.URL
	}
	if url == "" {
		return
	}
	select {
	case w.queue <- delivery{url, a}:
	default:
		w.results.WithLabelValues("dropped").Inc()
		w.log.Error("alert webhook queue full: transition not delivered", "rule", a.Rule, "camera", a.Camera)
	}
}

// run delivers queued transitions until ctx is done.
func (w *Webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-w.queue:
			w.deliver(ctx, d.url, d.alert)
		}
	}
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) deliver(ctx context.Context, url string, a Alert) {
	body, err := json.Marshal(Payload{Status: a.Status, Alert: a, Sent: time.Now().UTC()})
	if err != nil {
		w.log.Error("alert webhook body not encoded", "err", err)
		return
	}
	sig := Sign(w.opts.Secret, body)
	wait := w.opts.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, url, body, sig, a.Status)
		if err == nil {
			w.results.WithLabelValues("ok").Inc()
			return
		}
		if !retry || attempt >= w.opts.Attempts {
			w.results.WithLabelValues("failed").Inc()
			w.log.Error("alert webhook not delivered", "rule", a.Rule, "camera", a.Camera, "status", a.Status,
				"attempts", attempt, "err", err)
			return
		}
		w.results.WithLabelValues("retry").Inc()
		w.log.Warn("alert webhook failed; retrying", "rule", a.Rule, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}

// post makes one attempt; retry says whether another may succeed.
func (w *Webhook) post(ctx context.Context, target string, body []byte, sig string, status Status) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "straja-alerts")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set("X-Straja-Alert-Status", string(status))
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		// The URL may carry a token in its query: say only what failed.
		var ue *url.Error
		if e, ok := err.(*url.Error); ok {
			ue = e
			return true, fmt.Errorf("post: %w", ue.Err)
		}
		return true, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("receiver refused it: %s", resp.Status)
	}
}
