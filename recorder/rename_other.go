//go:build !linux

package recorder

// renameNoReplace renames oldpath to newpath, failing with an error matching
// fs.ErrExist when newpath exists.
func renameNoReplace(oldpath, newpath string) error { return linkRename(oldpath, newpath) }
