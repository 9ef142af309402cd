// Package durable makes file system changes survive a crash: a new or renamed entry
// is durable only once its directory is fsynced, and a new directory only once its
// parent is. The spool, the disk store and the state database's restore share it.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir makes a directory's entries (a created, renamed or removed file) durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// MkdirAll creates dir and its missing parents one level at a time, syncing each
// parent whose entries changed with syncDir (SyncDir, or a test's stand-in), so the new
// path survives a crash: os.MkdirAll syncs nothing.
func MkdirAll(dir string, syncDir func(dir string) error) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, syncDir); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// linkRename renames without replacing where the system cannot do it in one step: a
// hard link fails if newpath exists. A crash between the two steps leaves both names;
// the spool's recovery then stores the segment twice, never loses it.
func linkRename(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
