//go:build !linux

package durable

// RenameNoReplace renames oldpath to newpath, failing with an error matching
// fs.ErrExist when newpath exists.
func RenameNoReplace(oldpath, newpath string) error { return linkRename(oldpath, newpath) }
