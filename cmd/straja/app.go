package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/robfig/cron/v3"
	"github.com/schollz/progressbar/v3"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/recorder/gaps"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/holds"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
	"github.com/straja-nvr/straja/web/events"
)

// Main is the whole service, wired from a validated config. End-to-end tests drive it
// the way the binary does: Run, then Close.
type Main struct {
	Config *configs.Config
	Log    *slog.Logger
	// Sim, when set, is a camera simulator the service owns (the demo).
	Sim *camsim.Server
	// Out receives what is shown once and never logged: a new user's password.
	Out io.Writer
	// Demo, when set, makes Run create the demo's users.
	Demo *DemoUsers

	rec   *recorder.Recorder
	cams  *cameraManager
	state *state.State
	ret   *retention.Runner
	gaps  *gaps.Ledger
	holds *holds.Registry
	runs  *web.RunLog
	// Alerts judges the alert rules; the retention job calls its RetentionStopped
	// and RetentionResumed.
	Alerts *alerts.Engine
	bus    *events.Bus
	// stopLedger stops the gap ledger once the recorder has stopped, so that it
	// writes what the cameras' last moments left.
	stopLedger func()
	audit      *audit.Log
	cron       *cron.Cron // periodic jobs; Close stops it before what its jobs use
	rtc        *webrtc.Server
	http       *http.Server
	ln         net.Listener
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	done       chan struct{} // closed when the recorder stops
	runErr     error         // why it stopped; read after done is closed

	// metrics serves /metrics alone on metrics.listen; nil without it.
	metrics   *http.Server
	metricsLn net.Listener
	https     bool // the main listener answers HTTPS

	// exports runs clip exports; its expiry job is in cron.
	exports *export.Exporter
}

// Run opens storage and the state database, starts recording, state backups and the
// HTTP server, and returns once the server listens. Stop it with Close.
func (m *Main) Run(ctx context.Context) error {
	tlsCfg, err := serverTLS(m.Config, m.Log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts, err := recorderOptions(ctx, m.Config)
	if err != nil {
		return err
	}
	// Events start with the cameras, in rec.Run, after the ledger is set.
	var ledger *gaps.Ledger
	bus := events.New(0, 0)
	m.bus = bus
	opts.Events = func(ev recorder.Event) {
		ledger.Observe(ev)
		publishCameraEvent(bus, ev)
	}
	m.cams = newCameraManager(m.Config, m.Log)
	opts.Redact = m.cams.redact // the file's secrets and those of cameras added at runtime
	rec, err := recorder.New(ctx, opts, reg, m.Log)
	if err != nil {
		return err
	}
	sdb, err := state.Open(ctx, statePath(m.Config))
	if err != nil {
		rec.Close()
		return err
	}
	// Cameras added at runtime join the file's before the recorder runs.
	if err := m.cams.load(ctx, sdb, rec); err != nil {
		sdb.Close()
		rec.Close()
		return err
	}
	users, err := m.setUpUsers(ctx, sdb)
	if err != nil {
		sdb.Close()
		rec.Close()
		return err
	}
	// Before anything uploads or deletes: the store refuses to delete held footage
	// from here on, and holds a lost database forgot come back from the store.
	hr, err := holds.Open(ctx, holds.Options{State: sdb, Store: rec.Store(), Cameras: holdCameras(rec), Registerer: reg,
		Segments: rec.Catalog()},
		m.Log.With("component", "holds"))
	if err != nil {
		sdb.Close()
		rec.Close()
		return err
	}
	m.holds = hr
	exporter, err := newExporter(ctx, m.Config, rec, sdb, bus, m.Log)
	if err != nil {
		sdb.Close()
		rec.Close()
		return err
	}
	m.exports = exporter
	ln, err := net.Listen("tcp", m.Config.Listen)
	if err != nil {
		sdb.Close()
		rec.Close()
		return fmt.Errorf("listen: %w", err)
	}
	ln = web.LimitListener(ln, web.DefaultMaxConns, web.DefaultMaxConnsPerHost)
	var mln net.Listener
	if a := m.Config.Metrics.Listen; a != "" {
		if mln, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			sdb.Close()
			rec.Close()
			return fmt.Errorf("metrics.listen: %w", err)
		}
		mln = web.LimitListener(mln, metricsMaxConns, metricsMaxConns) // one scraper needs one
	}
	closeListeners := func() {
		ln.Close()
		if mln != nil {
			mln.Close()
		}
	}
	al, err := audit.New(ctx, sdb, audit.Options{Store: rec.Store(),
		AnchorInterval: time.Duration(m.Config.Audit.AnchorInterval)}, m.Log.With("component", "audit"))
	if err != nil {
		closeListeners()
		sdb.Close()
		rec.Close()
		return err
	}
	m.rec, m.ln, m.metricsLn, m.state, m.audit = rec, ln, mln, sdb, al
	ledger = gaps.New(sdb, m.Log.With("component", "gaps"))
	m.gaps, m.runs = ledger, &web.RunLog{}
	var recording []string
	for _, c := range rec.Cameras() {
		if c.Record {
			recording = append(recording, c.ID)
		}
	}
	if err := ledger.Start(ctx, recording, time.Now()); err != nil {
		closeListeners()
		al.Close()
		sdb.Close()
		rec.Close()
		return fmt.Errorf("gap ledger: %w", err)
	}
	// srv records the end of live sessions; no session ends before it is set, as
	// none starts before it serves.
	var srv *web.Server
	wc := m.Config.WebRTC
	rtc, err := webrtc.New(webrtc.Options{
		UDPPort: wc.UDPPort, TCPPort: wc.TCPPort,
		HostAddresses: wc.HostAddresses, STUNServers: wc.STUNServers,
		IncludeLoopback: configs.IsLoopback(m.Config.Listen),
		BindAddress:     mediaBindAddress(m.Config),
		MaxSessions:     wc.MaxSessions, MaxSessionsPerClient: wc.MaxSessionsPerClient,
		MaxSessionDuration: time.Duration(wc.MaxSessionDuration),
		OnSessionEnd:       func(e webrtc.SessionEnd) { srv.LiveEnded(e) },
	}, reg, m.Log.With("component", "webrtc"))
	if err != nil {
		closeListeners()
		al.Close()
		sdb.Close()
		rec.Close()
		return fmt.Errorf("webrtc: %w", err)
	}
	m.rtc = rtc
	aopts, err := alertOptions(m.Config, reg, m.Log.With("component", "alerts"))
	if err == nil {
		aopts.Store, aopts.Publish = sdb, func(a alerts.Alert) { publishAlert(bus, a) }
		m.Alerts, err = alerts.New(ctx, aopts, reg, m.Log.With("component", "alerts"))
	}
	if err != nil {
		rtc.Close()
		closeListeners()
		al.Close()
		sdb.Close()
		rec.Close()
		return err
	}
	ret, err := retention.NewRunner(ctx, m.retentionOptions(rec, sdb, al), reg, m.Log.With("component", "retention"))
	if err != nil {
		rtc.Close()
		closeListeners()
		al.Close()
		sdb.Close()
		rec.Close()
		return fmt.Errorf("retention: %w", err)
	}
	m.ret = ret
	srv = web.New(web.Options{Cameras: rec, Segments: rec, Health: rec, Gatherer: reg, Streams: rec, Live: rtc,
		Auditor: al, Users: users, Sessions: &auth.Sessions{DB: sdb, Idle: time.Duration(m.Config.Auth.SessionIdle),
			Absolute: time.Duration(m.Config.Auth.SessionMax), Lookback: time.Duration(m.Config.Auth.GuardLookback),
			Now: time.Now}, MetricsToken: m.Config.Metrics.Token,
		CameraManager: m.cams,
		Listen:        m.Config.Listen, PublicHosts: m.Config.PublicHosts,
		Gaps: ledger, Service: rec, Runs: m.runs,
		Player: playback.New(rec.Catalog(), rec.Store(), rec.Spool()), TimelineGaps: timelineGaps{ledger},
		Exports: exporter, Retention: ret, Events: bus, Alerts: m.Alerts,
		Holds: hr, HeldCameras: hr}, m.Log)
	m.http = web.NewHTTPServer(srv, m.Log)
	m.http.TLSConfig, m.https = tlsCfg, tlsCfg != nil
	if mln != nil {
		m.metrics = web.NewHTTPServer(metricsHandler(reg), m.Log)
	}

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if m.cron, err = startStateBackups(rctx, m.Config, sdb, al, rec.Store(), m.runs, reg, m.Log); err == nil {
		err = scheduleExportExpiry(rctx, m.cron, m.Config, exporter, al, m.Log)
	}
	if err != nil {
		if m.cron != nil {
			m.cron.Stop()
		}
		cancel()
		rtc.Close()
		closeListeners()
		al.Close()
		sdb.Close()
		rec.Close()
		return err
	}
	m.cancel = cancel
	lctx, stopLedger := context.WithCancel(context.WithoutCancel(ctx))
	ledgerDone := make(chan struct{})
	go func() {
		defer close(ledgerDone)
		ledger.Run(lctx)
	}()
	m.stopLedger = func() { stopLedger(); <-ledgerDone }
	ret.Start(rctx)
	m.done = make(chan struct{})
	m.wg.Go(func() { m.Alerts.Run(rctx, alertSource{rec}) })
	m.wg.Go(func() { hr.Run(rctx, holdSweepInterval) })
	m.wg.Go(func() { srv.SweepLive(rctx, liveSweepInterval) })
	m.wg.Go(func() {
		defer close(m.done)
		if err := rec.Run(rctx); err != nil {
			m.Log.Error("recorder stopped", "err", err)
			m.runErr = err
		}
	})
	m.wg.Go(func() { exporter.Run(rctx) })
	m.wg.Go(func() {
		serve := func() error { return m.http.Serve(ln) }
		if tlsCfg != nil {
			serve = func() error { return m.http.ServeTLS(ln, "", "") } // certificate in TLSConfig
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	})
	if mln != nil {
		m.wg.Go(func() {
			if err := m.metrics.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.Log.Error("metrics server stopped", "err", err)
			}
		})
	}
	if !configs.IsLoopback(m.Config.Listen) {
		if m.Config.InsecurePlainHTTP {
			m.Log.Warn("insecure_plain_http is true: passwords, session cookies and video cross the network "+
				"unencrypted to "+ln.Addr().String()+"; anyone on the network path can read them. "+
				"Serve HTTPS with tls.cert_file/key_file (`straja cert` makes a self-signed pair)",
				"listen", ln.Addr().String(), "public_hosts", m.Config.PublicHosts)
		}
		if host, _, _ := net.SplitHostPort(m.Config.Listen); len(m.Config.PublicHosts) == 0 &&
			(host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
			m.Log.Warn("public_hosts is empty: browsers on other machines get 421 until the name or " +
				"address they use is listed in public_hosts")
		}
	}
	cams := make([]string, len(m.Config.Cameras))
	for i, c := range m.Config.Cameras {
		cams[i] = c.ID
	}
	if err := al.Record(ctx, audit.Event{Actor: audit.ActorLocal, Action: audit.ActionServiceStart,
		Detail: map[string]any{"cameras": cams, "listen": ln.Addr().String()}}); err != nil {
		m.Log.Error("audit: service start not recorded", "err", err)
	}
	m.Log.Info("straja started", "url", m.URL(), "cameras", len(m.Config.Cameras),
		"storage", m.Config.Storage.Backend, "metrics", m.MetricsURL())
	return nil
}

// retentionOptions wires retention to the recorder's catalog, store and cameras,
// with its runs audited.
func (m *Main) retentionOptions(rec *recorder.Recorder, sdb *state.State, al *audit.Log) retention.RunnerOptions {
	o := retentionOptions(m.Config, rec.Catalog(), rec.Store(), sdb, recorderCameras(rec, m.cams))
	recordRun := auditRuns(al, m.runs, m.Log)
	o.OnRun = func(ctx context.Context, run retention.Run) {
		recordRun(ctx, run)
		announceRun(m.bus, m.Alerts, run)
	}
	o.Holds = m.holds
	return o
}

// Done is closed when the recorder stops by itself (an error it cannot recover from) or
// after Close; the service must not go on answering HTTP without recording.
func (m *Main) Done() <-chan struct{} { return m.done }

// Addr is the HTTP listen address.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// URL is the service's base URL on its listen address: https with TLS.
func (m *Main) URL() string {
	if m.https {
		return "https://" + m.Addr()
	}
	return "http://" + m.Addr()
}

// MetricsURL is where the separate metrics listener serves /metrics; "" without one.
func (m *Main) MetricsURL() string {
	if m.metricsLn == nil {
		return ""
	}
	return "http://" + m.metricsLn.Addr().String() + "/metrics"
}

// Close stops recording (finalising open segments into the spool), the HTTP server and
// the simulator, and waits for all of them.
func (m *Main) Close() error {
	if m.cancel == nil {
		return nil
	}
	shutdownCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
	defer c()
	_ = m.http.Shutdown(shutdownCtx)
	if m.metrics != nil {
		_ = m.metrics.Shutdown(shutdownCtx)
	}
	rtcErr := m.rtc.Close() // ends live sessions, recording their stop
	m.cancel()
	<-m.cron.Stop().Done()
	m.ret.Close() // before the catalog and the state database it uses
	m.wg.Wait()
	m.stopLedger()
	if m.Sim != nil {
		m.Sim.Close()
	}
	if err := m.audit.Record(shutdownCtx, audit.Event{Actor: audit.ActorLocal, Action: audit.ActionServiceStop}); err != nil {
		m.Log.Error("audit: service stop not recorded", "err", err)
	}
	// Close stores the chain head, before the store closes. A store that is down
	// now gets it from the next start's first anchoring, so it does not fail Close.
	if err := m.audit.Close(); err != nil {
		m.Log.Warn("audit head not stored at shutdown; the next start stores it", "err", err)
	}
	m.holds.Close()
	stateErr := m.state.Close()
	err := m.rec.Close()
	m.cancel = nil
	return errors.Join(m.runErr, rtcErr, stateErr, err)
}

// holdSweepInterval is how often expired holds' storage locks are lifted and the held
// footage recounted.
const holdSweepInterval = time.Minute

// metricsMaxConns caps the loopback metrics listener's connections.
const metricsMaxConns = 16

// liveSweepInterval is how soon a live view ends after its user is disabled by the
// CLI (through the API it ends at once).
const liveSweepInterval = 5 * time.Second

// holdCameras lists the recorder's cameras with their sites, for site holds.
func holdCameras(rec *recorder.Recorder) func() []holds.Camera {
	return func() []holds.Camera {
		cs := rec.Cameras()
		out := make([]holds.Camera, len(cs))
		for i, c := range cs {
			out[i] = holds.Camera{ID: c.ID, Site: c.Site}
		}
		return out
	}
}

// loadConfig loads and checks what a command uses: opts relax the rest.
func loadConfig(path string, opts ...configs.Option) (*configs.Config, error) {
	cfg, err := configs.Load(path, opts...)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// rebuildCatalog replaces the catalog with what the store holds.
func rebuildCatalog(ctx context.Context, cfg *configs.Config, stdout, stderr io.Writer) error {
	unlock, err := recorder.LockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("catalog rebuild: %w; stop the service first", err)
	}
	defer unlock()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	cat, err := storage.OpenCatalog(catalogPath(cfg))
	if errors.Is(err, storage.ErrNewerSchema) {
		// A cache this binary cannot read is rebuilt from nothing.
		if err = storage.RemoveCatalog(catalogPath(cfg)); err == nil {
			cat, err = storage.OpenCatalog(catalogPath(cfg))
		}
	}
	if err != nil {
		return err
	}
	defer cat.Close()
	var bar *progressbar.ProgressBar
	n, err := storage.Rebuild(ctx, cat, st, func(done, total int) {
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("rebuilding catalog"), progressbar.OptionShowCount())
		}
		_ = bar.Set(done)
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fmt.Errorf("catalog rebuild: %w", err)
	}
	fmt.Fprintf(stdout, "catalog rebuilt: %d segments\n", n)
	return importHolds(ctx, cfg, st, stdout)
}

// importHolds brings the evidence holds kept beside the footage back into the state
// database (a lost or restored one), so a rebuild leaves no hold forgotten.
func importHolds(ctx context.Context, cfg *configs.Config, st storage.Store, stdout io.Writer) error {
	sdb, err := state.Open(ctx, statePath(cfg))
	if err != nil {
		return err
	}
	defer sdb.Close()
	n, err := holds.Import(ctx, sdb, st)
	if err != nil {
		return fmt.Errorf("catalog rebuild: %w", err)
	}
	all, err := sdb.Holds(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "evidence holds: %d known, %d brought back from the store\n", len(all), n)
	return nil
}

// mediaBindAddress is the address live-view media listens on: the HTTP listen
// address's when it is loopback (nothing else can reach the page, so nothing else
// needs the media ports), else nil for every interface.
func mediaBindAddress(cfg *configs.Config) net.IP {
	if !configs.IsLoopback(cfg.Listen) {
		return nil
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); ip != nil {
		return ip
	}
	return net.IPv4(127, 0, 0, 1) // localhost
}
