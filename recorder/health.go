package recorder

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
)

// HealthCause names why the service cannot do its job. It is safe to show anyone:
// the details (paths, hosts, vendor messages) go to the log only.
type HealthCause string

// Health causes, most fundamental first: Health reports the first that applies.
const (
	CauseStarting         HealthCause = "starting"          // the store has not been probed yet
	CauseDiskFull         HealthCause = "disk_full"         // the spool's disk or the store has no space left
	CauseDiskError        HealthCause = "disk_error"        // the spool's disk fails writes for another reason
	CauseCatalogError     HealthCause = "catalog_error"     // stored segments cannot be catalogued
	CauseStoreUnreachable HealthCause = "store_unreachable" // the store fails probes or uploads
	CauseSpoolFull        HealthCause = "spool_full"        // the spool reached spool.max_bytes; recording pauses
)

// HealthError is what Health returns: a cause for /healthz, and the error behind it
// for the log.
type HealthError struct {
	Cause HealthCause
	Err   error
}

func (e *HealthError) Error() string {
	if e.Err == nil {
		return string(e.Cause)
	}
	return string(e.Cause) + ": " + e.Err.Error()
}

func (e *HealthError) Unwrap() error { return e.Err }

// Health is nil when the store answered its last probe, the last upload succeeded and
// every camera's recording is being written; otherwise a *HealthError.
func (r *Recorder) Health() error {
	r.mu.Lock()
	up := r.uploader
	r.mu.Unlock()
	probed, probeErr := r.probe.result()
	var upErr error
	if up != nil {
		upErr = up.LastError()
	}
	he := diagnose(up != nil && probed, probeErr, upErr, r.spool.WriteError(), r.spool.Full())
	if he == nil {
		return nil
	}
	if he.Err != nil {
		he.Err = redactedError{he.Err, r.redact}
	}
	return he
}

// redactedError is err with the credentials masked in its text.
type redactedError struct {
	err    error
	redact func(string) string
}

func (e redactedError) Error() string { return e.redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// diagnose picks the cause of ill health from what the recorder knows.
func diagnose(started bool, probeErr, uploadErr, spoolErr error, spoolFull bool) *HealthError {
	switch {
	case !started:
		return &HealthError{Cause: CauseStarting}
	case spoolErr != nil && isNoSpace(spoolErr):
		return &HealthError{CauseDiskFull, spoolErr}
	case uploadErr != nil && isNoSpace(uploadErr):
		return &HealthError{CauseDiskFull, uploadErr}
	case spoolErr != nil && !errors.Is(spoolErr, spool.ErrFull):
		return &HealthError{CauseDiskError, spoolErr}
	case uploadErr != nil && errors.Is(uploadErr, spool.ErrCatalog):
		return &HealthError{CauseCatalogError, uploadErr}
	case probeErr != nil:
		return &HealthError{CauseStoreUnreachable, probeErr}
	case uploadErr != nil:
		return &HealthError{CauseStoreUnreachable, uploadErr}
	case spoolFull || spoolErr != nil:
		return &HealthError{CauseSpoolFull, spoolErr}
	}
	return nil
}

// isNoSpace reports an error caused by a full disk or quota, local or in the store.
func isNoSpace(err error) bool {
	return errors.Is(err, storage.ErrFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Store probing: without it, a store that is down from the start shows only when
// the first segment fails to upload, a segment duration later.
const (
	storeProbeInterval = 10 * time.Second
	storeProbeTimeout  = 5 * time.Second
)

// storePinger is what the probe needs of a store; both backends have it.
type storePinger interface {
	// Ping checks that the store is reachable, cheaply.
	Ping(ctx context.Context) error
}

// storeProbe remembers the last probe's outcome.
type storeProbe struct {
	mu     sync.Mutex
	probed bool
	err    error
}

func (p *storeProbe) result() (probed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probed, p.err
}

// probeStore pings the store now and every storeProbeInterval until ctx is done,
// keeping straja_store_up and Health current while nothing is being uploaded.
func (r *Recorder) probeStore(ctx context.Context) {
	ping := func(ctx context.Context) error {
		_, err := r.store.Stat(ctx, storeProbeKey)
		return ignoreNotFound(err)
	}
	if p, ok := r.store.(storePinger); ok {
		ping = p.Ping
	}
	t := time.NewTicker(storeProbeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, storeProbeTimeout)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.probe.mu.Lock()
		was, wasProbed := r.probe.err, r.probe.probed
		r.probe.probed, r.probe.err = true, err
		r.probe.mu.Unlock()
		switch {
		case err != nil:
			r.metrics.StoreUp.Set(0)
			if was == nil {
				r.log.Warn("store unreachable", "err", redactedError{err, r.redact})
			}
		default:
			// An upload failing while pings pass (a full or read-only store) keeps it down.
			if up := r.currentUploader(); up == nil || up.LastError() == nil {
				r.metrics.StoreUp.Set(1)
			}
			if was != nil || !wasProbed {
				r.log.Info("store reachable")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeProbeKey is a reserved key no segment can have; a Stat of it is the probe of
// a store without Ping.
const storeProbeKey = "straja/probe"

func ignoreNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func (r *Recorder) currentUploader() *spool.Uploader {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uploader
}

// ServiceStatus is the service-wide part of the recorder's health.
type ServiceStatus struct {
	// SpoolBytes is what the spool holds; SpoolMaxBytes its cap (0: none).
	SpoolBytes, SpoolMaxBytes int64
	// SpoolFull: the spool reached its cap and recording pauses.
	SpoolFull bool
	// DiskFreeBytes is the space left on the spool's disk; DiskKnown false if it
	// could not be read.
	DiskFreeBytes uint64
	DiskKnown     bool
	// StoreReachable: the store answered its last probe and the last upload worked.
	// StoreProbed is false until the first probe.
	StoreReachable, StoreProbed bool
	// Cause is why the service is degraded ("" when healthy): see Health.
	Cause HealthCause
}

// Service reports the service-wide figures of the recorder's health.
func (r *Recorder) Service() ServiceStatus {
	st := ServiceStatus{SpoolBytes: r.spool.Bytes(), SpoolMaxBytes: r.spoolMax, SpoolFull: r.spool.Full()}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(r.spoolDir, &fs); err == nil {
		st.DiskFreeBytes, st.DiskKnown = fs.Bavail*uint64(fs.Bsize), true
	}
	probed, probeErr := r.probe.result()
	st.StoreProbed = probed
	st.StoreReachable = probed && probeErr == nil
	if up := r.currentUploader(); up != nil && up.LastError() != nil {
		st.StoreReachable = false
	}
	var he *HealthError
	if errors.As(r.Health(), &he) {
		st.Cause = he.Cause
	}
	return st
}
