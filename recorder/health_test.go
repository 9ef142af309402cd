package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
)

func TestDiagnose(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:9: connection refused")
	diskFull := &fs.PathError{Op: "write", Path: "/srv/straja/spool/cam1/1.part", Err: syscall.ENOSPC}
	storeFull := fmt.Errorf("upload k: put k: write /srv/segments/x: no space left on device (%w)", storage.ErrFull)
	for _, tc := range []struct {
		name                    string
		started                 bool
		probe, upload, spoolErr error
		spoolFull               bool
		want                    HealthCause
	}{
		{"healthy", true, nil, nil, nil, false, ""},
		{"not probed yet", false, nil, nil, nil, false, CauseStarting},
		{"store down from the start", true, down, nil, nil, false, CauseStoreUnreachable},
		{"upload failing", true, nil, fmt.Errorf("upload k: %w", down), nil, false, CauseStoreUnreachable},
		{"store's disk full", true, nil, storeFull, nil, false, CauseDiskFull},
		{"store's disk full, ENOSPC only", true, nil, fmt.Errorf("upload k: %w", diskFull), nil, false, CauseDiskFull},
		{"spool's disk full", true, nil, nil, diskFull, false, CauseDiskFull},
		{"spool's disk fails", true, nil, nil, &fs.PathError{Op: "write", Path: "x", Err: syscall.EIO}, false, CauseDiskError},
		{"spool at its cap", true, nil, nil, fmt.Errorf("%w: 10 of 10 bytes used", spool.ErrFull), true, CauseSpoolFull},
		{"spool at its cap because the store is down", true, down, nil, spool.ErrFull, true, CauseStoreUnreachable},
		{"catalog fails", true, nil, fmt.Errorf("%w k: database is locked", spool.ErrCatalog), nil, false, CauseCatalogError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			he := diagnose(tc.started, tc.probe, tc.upload, tc.spoolErr, tc.spoolFull)
			var got HealthCause
			if he != nil {
				got = he.Cause
			}
			if got != tc.want {
				t.Errorf("cause %q (%v), want %q", got, he, tc.want)
			}
		})
	}
}
