package redact

import (
	"strings"
	"testing"
)

// TestString checks that text quoting a camera URL, or its password alone, comes
// out without the password in any form, whatever else the URL holds.
func TestString(t *testing.T) {
	for _, tc := range []struct {
		name, url, msg string
		secrets        []string // must not remain
		keep           string   // must remain
	}{
		{"plain", "rtsp://admin:hunter2@10.0.0.5/ch1",
			`describe rtsp://admin:hunter2@10.0.0.5/ch1: 401`, []string{"hunter2"}, "rtsp://admin:***@10.0.0.5/ch1: 401"},
		{"password alone", "rtsp://admin:hunter2@10.0.0.5/ch1",
			`password hunter2 rejected`, []string{"hunter2"}, "password *** rejected"},
		{"@ in query", "rtsp://u:pw5Kq@cam.local/s?owner=ops@example",
			`auth for pw5Kq failed; parse "rtsp://u:pw5Kq@cam.local/s?owner=ops@example": bad`,
			[]string{"pw5Kq"}, `auth for *** failed; parse "rtsp://u:***@cam.local/s?owner=ops@example"`},
		{"@ in path", "rtsp://u:pw5Kq@cam.local/a@b/s",
			`user u, password pw5Kq: 401 at rtsp://u:pw5Kq@cam.local/a@b/s`,
			[]string{"pw5Kq"}, "rtsp://u:***@cam.local/a@b/s"},
		{"@ in password", "rtsp://admin:p%40ss%3Aw0rd@cam:554/s?x=a@b",
			`parse "rtsp://admin:p%40ss%3Aw0rd@cam:554/s?x=a@b": bad; got p@ss:w0rd`,
			[]string{"p@ss:w0rd", "p%40ss%3Aw0rd", "p%40ss"}, "cam:554/s?x=a@b"},
		{"unescaped @ in password", "rtsp://admin:p@ss@cam:554/s",
			`got p@ss from rtsp://admin:p@ss@cam:554/s`, []string{"p@ss"}, "cam:554/s"},
		{"unparsable", "rtsp://u:se cret@[bad/x?o=a@b",
			`parse "rtsp://u:se cret@[bad/x?o=a@b": invalid; se cret`, []string{"se cret"}, `parse "rtsp://u:`},
		{"unparsable, / and # in password", "rtsp://admin:Hun#ter/2x@10.0.0.5:99999/a?o=x@y",
			`parse "rtsp://admin:Hun#ter/2x@10.0.0.5:99999/a?o=x@y": invalid port`, []string{"Hun#ter/2x", "ter/2x"}, "invalid port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.msg, Passwords(tc.url))
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("String(%q) = %q: still holds %q", tc.msg, got, s)
				}
			}
			if !strings.Contains(got, tc.keep) {
				t.Errorf("String(%q) = %q, want it to keep %q", tc.msg, got, tc.keep)
			}
		})
	}
}

func TestStringKeepsPlainText(t *testing.T) {
	for _, msg := range []string{
		"dial tcp 10.0.0.5:554: connection refused",
		"GET http://[::1]:8080/api/v1/cameras?x=a@b: 404",
		"rtsp://admin@cam/s?x=a:b@c",
	} {
		if got := String(msg, nil); got != msg {
			t.Errorf("String(%q) = %q, want it unchanged", msg, got)
		}
	}
	// A password-less URL with ':' and '@' in its path yields no password, so
	// nothing else in a message gets masked.
	if got := Passwords("rtsp://admin@cam/a:b@c"); len(got) != 0 {
		t.Errorf("Passwords of a URL without password = %q", got)
	}
	if got := String("describe rtsp://admin:x@cam/s failed", nil); got != "describe rtsp://admin:***@cam/s failed" {
		t.Errorf("userinfo not masked: %q", got)
	}
}

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://admin:secret@10.0.0.1:554/s", "rtsp://admin:***@10.0.0.1:554/s"},
		{"rtsp://u:pw@host/s?owner=ops@example", "rtsp://u:***@host/s?owner=ops@example"},
		{"rtsp://u:pw@host/a@b", "rtsp://u:***@host/a@b"},
		{"rtsp://10.0.0.1/s", "rtsp://10.0.0.1/s"},
		{"rtsp://u:p#ss@cam.local:99999/s", "(invalid url)"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("rtsp://u:pw@host/s?owner=ops@example", "x pw y")
	f.Add("rtsp://admin:Hun#ter/2x@10.0.0.5:99999/a", "parse error")
	f.Fuzz(func(t *testing.T, rawURL, msg string) {
		pws := Passwords(rawURL)
		got := String(msg+rawURL, pws)
		for _, pw := range pws {
			if len(pw) >= 3 && !strings.Contains(pw, "*") && strings.Contains(got, pw) {
				t.Fatalf("String(%q) = %q holds password form %q", msg+rawURL, got, pw)
			}
		}
	})
}
