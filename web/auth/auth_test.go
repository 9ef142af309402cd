package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/straja-nvr/straja/storage/state"
)

// testParams keep tests quick; the hash format and the code paths are the same.
var testParams = Params{Memory: 8 * 1024, Time: 1, Threads: 2}

func newUsers(t *testing.T) *Users {
	t.Helper()
	db, err := state.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Users{DB: db, Hasher: NewHasher(testParams, 4),
		Targets: Targets{Sites: []string{"bastion", "palat"}, Cameras: []string{"bastion-gate", "palat-hall"}}}
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=8192,t=1,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormatAndVerify(t *testing.T) {
	ctx := t.Context()
	h := NewHasher(testParams, 2)
	a, err := h.Hash(ctx, "Corect-cal-baterie")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash(ctx, "Corect-cal-baterie")
	if !phcRE.MatchString(a) {
		t.Errorf("hash %q is not a PHC string $argon2id$v=19$m=8192,t=1,p=2$salt$hash", a)
	}
	if a == b {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if ok, err := h.Verify(ctx, a, "Corect-cal-baterie"); !ok || err != nil {
		t.Errorf("verify the right password = %v, %v", ok, err)
	}
	if ok, err := h.Verify(ctx, a, "Corect-cal-bateriE"); ok || err != nil {
		t.Errorf("verify a wrong password = %v, %v", ok, err)
	}
	// A hash made with other parameters verifies with its own.
	old, _ := NewHasher(Params{Memory: 16 * 1024, Time: 2, Threads: 1}, 1).Hash(ctx, "Parola-veche-1")
	if ok, err := h.Verify(ctx, old, "Parola-veche-1"); !ok || err != nil {
		t.Errorf("verify a hash with older parameters = %v, %v", ok, err)
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=8192,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=8192,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 4 GiB
		"$argon2id$v=19$m=8192,t=0,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=8192,t=1,p=2$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := h.Verify(ctx, bad, "x"); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("verify against %q: %v, want ErrMalformedHash", bad, err)
		}
	}
}

// TestUnknownUserCostsAHash: an unknown or disabled user runs Argon2id once like a
// known one, so a login's duration does not tell whether a username exists.
func TestUnknownUserCostsAHash(t *testing.T) {
	ctx := t.Context()
	u := newUsers(t)
	if err := u.Add(ctx, "ana", RoleGuard, "Bastion-de-noapte"); err != nil {
		t.Fatal(err)
	}
	if err := u.Add(ctx, "dan", RoleGuard, "Bastion-de-zi-12"); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDisabled(ctx, "dan", true); err != nil {
		t.Fatal(err)
	}
	if _, err := u.dummyHash(ctx); err != nil { // made once, outside what is counted
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, password string }{
		{"ana", "Bastion-de-noapte"}, {"ana", "wrong-Password"}, {"nimeni", "Bastion-de-noapte"}, {"dan", "Bastion-de-zi-12"},
	} {
		before := u.Hasher.Stats().Runs
		got, err := u.Authenticate(ctx, tc.user, tc.password)
		if runs := u.Hasher.Stats().Runs - before; runs != 1 {
			t.Errorf("authenticate %s: %d Argon2id runs, want 1 whoever it is", tc.user, runs)
		}
		if tc.user == "ana" && tc.password == "Bastion-de-noapte" {
			if err != nil || got.Username != "ana" || !slices.Equal(got.Roles, []string{RoleGuard}) {
				t.Errorf("authenticate ana = %+v, %v", got, err)
			}
		} else if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("authenticate %s/%s = %v, want ErrBadCredentials", tc.user, tc.password, err)
		}
	}
}

// TestHashingIsCapped: 50 verifications at once never run more than the cap.
func TestHashingIsCapped(t *testing.T) {
	ctx := t.Context()
	h := NewHasher(testParams, 3)
	phc, err := h.Hash(ctx, "Poarta-de-nord-7")
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			if ok, err := h.Verify(ctx, phc, "Poarta-de-nord-7"); !ok || err != nil {
				t.Errorf("verify = %v, %v", ok, err)
			}
		})
	}
	close(start)
	wg.Wait()
	s := h.Stats()
	if s.Runs != 51 || s.MaxInFlight > 3 {
		t.Errorf("stats = %+v, want 51 runs and at most 3 at once", s)
	}
	if s.MaxInFlight < 2 {
		t.Errorf("at most %d ran at once: the cap of 3 was never used", s.MaxInFlight)
	}

	// A caller that gives up while waiting for a slot gets its context's error.
	full := NewHasher(testParams, 1)
	full.sem <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := full.Verify(cctx, phc, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("verify while every slot is taken and ctx cancelled = %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := t.Context()
	u := newUsers(t)
	if err := u.Add(ctx, "ana", RoleGuard, "Bastion-de-noapte"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"empty username", func() error { return u.Add(ctx, "", RoleGuard, "Bastion-de-noapte") }, "username: must not be empty"},
		{"long username", func() error { return u.Add(ctx, strings.Repeat("a", 65), RoleGuard, "Bastion-de-noapte") }, "username: 65 characters, at most 64"},
		{"upper-case username", func() error { return u.Add(ctx, "Ana", RoleGuard, "Bastion-de-noapte") }, `username: "Ana" has 'A'`},
		{"space in username", func() error { return u.Add(ctx, "ana maria", RoleGuard, "Bastion-de-noapte") }, `has ' '`},
		{"taken username", func() error { return u.Add(ctx, "ana", RoleAdmin, "Bastion-de-noapte") }, `username: "ana" is taken`},
		{"unknown role", func() error { return u.Add(ctx, "bob", "root", "Bastion-de-noapte") }, `role: "root" is not a role`},
		{"short password", func() error { return u.Add(ctx, "bob", RoleGuard, "Scurt-1") }, "password: 7 characters, at least 12"},
		{"username as password", func() error { return u.Add(ctx, "bob.popescu.12", RoleGuard, "bob.popescu.12") }, "password: must not be the username"},
		{"one kind only", func() error { return u.Add(ctx, "bob", RoleGuard, "bastiondenoapte") }, "password: all characters are of one kind"},
		{"digits only", func() error { return u.Add(ctx, "bob", RoleGuard, "123456789012") }, "of one kind"},
		{"passwd unknown user", func() error { return u.SetPassword(ctx, "nimeni", "Bastion-de-noapte") }, `username: no user "nimeni"`},
		{"passwd weak", func() error { return u.SetPassword(ctx, "ana", "ana") }, "password: 3 characters"},
		{"disable unknown user", func() error { return u.SetDisabled(ctx, "nimeni", true) }, `username: no user "nimeni"`},
		{"grant unknown site", func() error { return u.Grant(ctx, "ana", state.Grant{Kind: "site", Target: "turn"}) }, `site: "turn" is not a configured site`},
		{"grant unknown camera", func() error { return u.Grant(ctx, "ana", state.Grant{Kind: "camera", Target: "bastion"}) }, `camera: "bastion" is not a configured camera`},
		{"grant to unknown user", func() error { return u.Grant(ctx, "nimeni", state.Grant{Kind: "site", Target: "bastion"}) }, `username: no user "nimeni"`},
	} {
		err := tc.do()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if us, _ := u.List(ctx); len(us) != 1 {
		t.Errorf("users after bad input = %+v, want only ana", us)
	}
}

func TestAddFirstOnce(t *testing.T) {
	ctx := t.Context()
	u := newUsers(t)
	p, err := u.AddFirst(ctx, "admin")
	if err != nil || CheckPassword("admin", p) != nil {
		t.Fatalf("first admin password %q, %v", p, err)
	}
	if again, err := u.AddFirst(ctx, "admin"); again != "" || err != nil {
		t.Errorf("second AddFirst = %q, %v; want nothing done", again, err)
	}
	if got, err := u.Authenticate(ctx, "admin", p); err != nil || !slices.Equal(got.Roles, []string{RoleAdmin}) {
		t.Errorf("sign in with the printed password = %+v, %v", got, err)
	}
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := RandomPassword()
		if err != nil || len(p) != 20 || CheckPassword("admin", p) != nil || seen[p] {
			t.Fatalf("random password %q, %v (repeated: %v)", p, err, seen[p])
		}
		seen[p] = true
	}
}

// BenchmarkArgon2 measures one login's hash with the default parameters.
func BenchmarkArgon2(b *testing.B) {
	h := NewHasher(DefaultParams, DefaultConcurrency)
	phc, err := h.Hash(b.Context(), "Bastion-de-noapte")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := h.Verify(b.Context(), phc, "Bastion-de-noapte"); !ok {
			b.Fatal("verify failed")
		}
	}
}

// vmHWM is the process's peak resident memory so far, in bytes (Linux), or 0.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if kb, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// BenchmarkArgon2Concurrent50 runs 50 verifications at once through the cap and
// reports how much heap the process had to obtain for them.
func BenchmarkArgon2Concurrent50(b *testing.B) {
	h := NewHasher(DefaultParams, DefaultConcurrency)
	phc, err := h.Hash(b.Context(), "Bastion-de-noapte")
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { _, _ = h.Verify(b.Context(), phc, "Bastion-de-noapte") })
		}
		wg.Wait()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapSys-before.HeapSys)/(1<<20), "heapsys-MiB")
	if hwm := vmHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
	}
	b.ReportMetric(float64(h.Stats().MaxInFlight), "max-in-flight")
}
