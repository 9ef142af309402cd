package configs

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration, located as precisely as known.
// Load, Parse and Validate return all problems found, joined with errors.Join.
type Error struct {
	File string // configuration file name; "" when unknown
	Line int    // 1-based line in File; 0 when unknown
	Env  string // environment variable the value came from, if any
	Flag string // command-line flag the value came from, if any (without dashes)
	Path string // field path such as "cameras[2].url"; "" for the whole file
	Msg  string
}

// Error formats e as "file:line: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Flag != "":
		fmt.Fprintf(&b, "--%s: ", e.Flag)
	case e.Env != "":
		fmt.Fprintf(&b, "environment variable %s: ", e.Env)
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if e.Path != "" && e.Flag == "" { // the flag names the field
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// source remembers where each field of a parsed Config came from.
type source struct {
	file   string
	lines  map[string]int    // field path -> line of its key or list item
	env    map[string]string // field path -> environment variable
	flags  map[string]string // field path -> command-line flag
	failed []string          // paths that did not decode; validation skips them
	lookup func(string) (string, bool)
	// noCameraSecrets: unset password_env variables are not an error (WithoutCameraSecrets).
	noCameraSecrets bool
}

// errorf returns an error for path, placed at the path's line or its nearest
// ancestor's (a missing field is reported where its parent is).
func (s *source) errorf(path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if s == nil {
		return e
	}
	e.File = s.file
	if f, ok := s.flags[path]; ok {
		e.Flag = f
		return e
	}
	if v, ok := s.env[path]; ok {
		e.Env = v
		return e
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			e.Line = l
			break
		}
	}
	return e
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// removedFields are settings that older versions read, with what replaced them, so
// that an old file fails with a way forward rather than "unknown field".
var removedFields = map[string]string{
	"allow_remote": "allow_remote was removed: users now sign in; serve HTTPS with " +
		"tls.cert_file/key_file, or set insecure_plain_http: true on a trusted network",
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML fills cfg from data, strictly: unknown or repeated fields and values
// of the wrong shape are errors, each with its line and field path.
func decodeYAML(data []byte, cfg *Config) []*Error {
	src := cfg.src
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	err := dec.Decode(&doc)
	if err == nil {
		if err = dec.Decode(&extra); err == nil {
			return []*Error{{File: src.file, Line: extra.Line, Msg: "only one YAML document is allowed"}}
		} else if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if errors.Is(err, io.EOF) {
		return nil // empty file: defaults only
	}
	if err != nil {
		e := &Error{File: src.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		return []*Error{e}
	}
	d := &decoder{src: src}
	if len(doc.Content) > 0 {
		d.value(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	}
	return d.errs
}

type decoder struct {
	src  *source
	errs []*Error
}

// fail records a problem at path, placed on the line of the path's key (which is
// where a reader looks, even when the value starts on the next line) or else n's.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line, ok := d.src.lines[path]
	if !ok {
		line = n.Line
	}
	d.failAt(line, path, format, args...)
}

func (d *decoder) failAt(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	d.src.failed = append(d.src.failed, path)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value decodes n into v. It follows the Go type, not the YAML, so its recursion
// is bounded by the depth of Config even for YAML with cyclic aliases.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // unset: keep the default
	}
	scalar := func(what string) bool {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "must be %s", what)
			return false
		}
		return true
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		if scalar("a single value") {
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
				d.fail(n, path, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			el, p := s.Index(i), fmt.Sprintf("%s[%d]", path, i)
			d.src.lines[p] = item.Line
			d.value(item, el, p)
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		before := len(d.errs)
		if d.value(n, p.Elem(), path); len(d.errs) == before {
			v.Set(p)
		}
	case reflect.String:
		if scalar("a string") {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		var b bool
		if scalar("true or false") {
			if n.Decode(&b) != nil {
				d.fail(n, path, "must be true or false, not %q", n.Value)
			}
			v.SetBool(b)
		}
	case reflect.Int:
		if scalar("a whole number") {
			i, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil || v.OverflowInt(i) {
				d.fail(n, path, "must be a whole number, not %q", n.Value)
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if scalar("a number") {
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(n, path, "must be a number, not %q", n.Value)
			}
			v.SetFloat(f)
		}
	default:
		panic("configs: no decoder for " + v.Type().String())
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of settings")
		return
	}
	fields := map[string]int{}
	for i := range v.NumField() {
		if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = i
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.failAt(k.Line, path, "setting names must be plain words")
			continue
		}
		p := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case k.Value == "<<":
			d.failAt(k.Line, p, "merge keys are not supported")
		case seen[k.Value] > 0:
			d.failAt(k.Line, p, "repeated (first at line %d)", seen[k.Value])
		case !ok && removedFields[p] != "":
			d.failAt(k.Line, p, "%s", removedFields[p])
		case !ok:
			d.failAt(k.Line, p, "unknown field%s", suggest(k.Value, fields))
		default:
			seen[k.Value] = k.Line
			d.src.lines[p] = k.Line
			d.value(val, v.Field(idx), p)
		}
	}
}

// suggest names the known field closest to a misspelt one.
func suggest(word string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if dist := editDistance(word, f); dist < bestDist || dist == bestDist && f < best {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// unmarshalScalar lets the value types decode themselves when a caller uses
// yaml.v3 directly rather than Parse.
func unmarshalScalar(n *yaml.Node, u encoding.TextUnmarshaler) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: must be a single value", n.Line)
	}
	if err := u.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
