// Package redact keeps passwords out of logs, API responses and errors: every
// package that shows text which may quote a camera URL or a vendor error passes it
// through String with the secrets it knows.
package redact

import (
	"cmp"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces a secret.
const Mask = "***"

// userinfo matches the password part of any URL in a text. The password may hold
// '@' (it runs to the last '@' before the path), never '/', '?', '#' or a space.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s@:]*):[^/?#\s]*@`)

// String returns s with the password of every URL in it masked, and every
// occurrence of each secret replaced by Mask (longest first, so a secret that
// contains another is replaced whole).
func String(s string, secrets []string) string {
	s = userinfo.ReplaceAllString(s, "${1}:"+Mask+"@")
	for _, secret := range sorted(secrets) {
		s = strings.ReplaceAll(s, secret, Mask)
	}
	return s
}

// Forms returns the ways secret may be written in text: as given, percent-decoded,
// and escaped as a URL path or userinfo writes it.
func Forms(secret string) []string {
	if secret == "" || secret == Mask {
		return nil
	}
	out := []string{secret}
	plain := secret
	if dec, err := url.PathUnescape(secret); err == nil && dec != "" {
		plain = dec
	}
	out = append(out, plain, url.PathEscape(plain), url.QueryEscape(plain),
		url.UserPassword("", plain).String()[1:]) // ":" + escaped password
	return sorted(out)
}

// Passwords returns the forms (see Forms) of the password in rawURL. It reads the
// URL by hand, as url.Parse splits it (the user information ends at the last '@'
// before the first '/', '?' or '#'), so a '@' in the path or query is not taken for
// part of the password. A URL that url.Parse rejects may hold a password with any
// character, so then every text between "://" and an '@' counts as one.
func Passwords(rawURL string) []string {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil
	}
	var out []string
	add := func(userinfo string) {
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			out = append(out, Forms(pw)...)
		}
	}
	authority := rest
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		add(authority[:at])
	}
	if _, err := url.Parse(rawURL); err != nil {
		for i := range len(rest) {
			if rest[i] == '@' {
				add(rest[:i])
			}
		}
	}
	return sorted(out)
}

// URL returns rawURL with its password replaced by Mask, or "(invalid url)" when
// it does not parse (the parser's error would quote it).
func URL(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(invalid url)"
	}
	if _, has := u.User.Password(); !has {
		return u.String()
	}
	user := url.User(u.User.Username()).String()
	u.User = nil
	// Built by hand: url.URL.String would escape the asterisks.
	return u.Scheme + "://" + user + ":" + Mask + "@" + strings.TrimPrefix(u.String(), u.Scheme+"://")
}

// sorted returns the non-empty secrets, longest first, without duplicates.
func sorted(secrets []string) []string {
	out := slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" || s == Mask })
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return slices.Compact(out)
}
