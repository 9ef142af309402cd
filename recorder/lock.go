package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrDataDirInUse is returned when another straja process holds the data directory.
var ErrDataDirInUse = errors.New("data_dir is in use by another straja process")

// LockDataDir takes an exclusive lock on dir, so two services, or a service and a catalog
// rebuild, never write the same spool and catalog. The kernel drops the lock when the
// process dies, so a crash never leaves it stale. unlock releases it.
func LockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	path := filepath.Join(dir, "straja.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	return func() { f.Close() }, nil
}
