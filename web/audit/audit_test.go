package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

type env struct {
	dbPath string
	st     *state.State
	store  storage.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dbPath: filepath.Join(dir, "state.db")}
	var err error
	if e.st, err = state.Open(context.Background(), e.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if e.store, err = storage.NewDisk(filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) open(t testing.TB) *audit.Log {
	t.Helper()
	l, err := audit.New(context.Background(), e.st, audit.Options{Store: e.store}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// record appends n entries and anchors the head after each `every` of them.
func (e *env) record(t testing.TB, l *audit.Log, n, every int) {
	t.Helper()
	for i := range n {
		if err := l.Record(t.Context(), audit.Event{Actor: "10.20.1.7", Action: audit.ActionSegmentList,
			Camera: "bastion-gate", Detail: map[string]any{"from": "2026-11-30T08:00:00Z", "i": i}}); err != nil {
			t.Fatal(err)
		}
		if every > 0 && (i+1)%every == 0 {
			if err := l.Anchor(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// tamper edits the database as someone with the file would: the triggers go first.
func (e *env) tamper(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append([]string{`DROP TRIGGER IF EXISTS audit_no_update`, `DROP TRIGGER IF EXISTS audit_no_delete`}, stmts...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func verifyFails(t *testing.T, e *env, seq int64, want string) {
	t.Helper()
	n, _, err := audit.Verify(t.Context(), e.st, e.store)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verify = %d entries, %v; want a VerifyError at entry %d", n, err, seq)
	}
	if ve.Seq != seq || !strings.Contains(ve.Msg, want) {
		t.Fatalf("verify error = %v; want entry %d and %q", err, seq, want)
	}
}

func TestVerifyIntact(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 25, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A reopened log continues the chain.
	l = e.open(t)
	e.record(t, l, 5, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	n, heads, err := audit.Verify(t.Context(), e.st, e.store)
	if err != nil || n != 30 || heads != 4 { // 10, 20, 25 (close), 30 (close)
		t.Fatalf("verify = %d entries, %d heads, %v; want 30, 4, nil", n, heads, err)
	}
}

func TestVerifyCatchesRewrittenEntry(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 20, 0)
	l.Close()
	e.tamper(t, `UPDATE audit SET camera = 'palat-hall' WHERE seq = 7`)
	verifyFails(t, e, 7, "hash mismatch")
}

func TestVerifyCatchesDeletedTail(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 20, 10)
	l.Close() // head 20 stored
	e.tamper(t, `DELETE FROM audit WHERE seq > 14`)
	verifyFails(t, e, 15, "stored head seq 20 is beyond the database's last entry 14")
}

func TestVerifyCatchesDeletedMiddle(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 20, 0)
	l.Close()
	e.tamper(t, `DELETE FROM audit WHERE seq = 5`)
	verifyFails(t, e, 5, "missing")
}

// TestVerifyCatchesRecomputedChain edits entry 7 and recomputes every hash after it,
// so the chain holds together: only the heads in the store show the edit.
func TestVerifyCatchesRecomputedChain(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 20, 10) // heads at 10 and 20
	l.Close()
	e.tamper(t, `UPDATE audit SET actor = '10.99.9.9' WHERE seq = 7`)
	var rows []audit.Entry
	if err := e.st.AuditRows(t.Context(), audit.Query{}, func(r audit.Entry) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	var stmts []string
	prev := rows[0].PrevHash
	for _, r := range rows {
		r.PrevHash = prev
		r.Hash = audit.Hash(r)
		prev = r.Hash
		stmts = append(stmts, fmt.Sprintf(`UPDATE audit SET prev_hash = x'%x', hash = x'%x' WHERE seq = %d`, r.PrevHash, r.Hash, r.Seq))
	}
	e.tamper(t, stmts...)
	verifyFails(t, e, 10, "disagrees with the head stored")
}

func TestAppendOnlyBySQL(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	e.record(t, l, 1, 0)
	l.Close()
	db, err := sql.Open("sqlite", "file:"+e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`UPDATE audit SET actor = 'x'`, `DELETE FROM audit`} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
}

func TestConcurrentRecordsChain(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { e.record(t, l, 50, 0) })
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(t.Context(), audit.Event{Action: "x"}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("record after close = %v, want ErrClosed", err)
	}
	if n, _, err := audit.Verify(t.Context(), e.st, e.store); err != nil || n != 400 {
		t.Fatalf("verify = %d, %v; want 400 entries", n, err)
	}
}

// Two processes append at once (the service and a command such as `straja user`):
// each one's entries land after the other's head, and the chain stays whole.
func TestTwoWritersKeepOneChain(t *testing.T) {
	e := newEnv(t)
	other, err := state.Open(t.Context(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a := e.open(t)
	b, err := audit.New(t.Context(), other, audit.Options{Store: e.store}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, l := range []*audit.Log{a, b} {
		wg.Go(func() { e.record(t, l, 100, 0) })
	}
	wg.Wait()
	if err := errors.Join(a.Close(), b.Close()); err != nil {
		t.Fatal(err)
	}
	if n, _, err := audit.Verify(t.Context(), e.st, e.store); err != nil || n != 200 {
		t.Fatalf("verify = %d, %v; want 200 entries in one chain", n, err)
	}
}

// BenchmarkAuditAppend measures entries per second through Record, each entry
// chained and committed: with concurrent callers (requests), which share commits, and
// with one caller, whose every entry is its own commit (the latency a lone request
// pays).
func BenchmarkAuditAppend(b *testing.B) {
	ev := audit.Event{Actor: "10.20.1.7", Action: audit.ActionSegmentList, Camera: "bastion-gate",
		Detail: map[string]any{"from": "2026-11-30T08:00:00Z", "to": "2026-11-30T09:00:00Z"}}
	b.Run("concurrent", func(b *testing.B) {
		e := newEnv(b)
		l := e.open(b)
		defer l.Close()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := l.Record(context.Background(), ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("serial", func(b *testing.B) {
		e := newEnv(b)
		l := e.open(b)
		defer l.Close()
		b.ResetTimer()
		for b.Loop() {
			if err := l.Record(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}

// downStore refuses every Put, as an unreachable store does.
type downStore struct{ storage.Store }

func (downStore) Put(context.Context, string, io.Reader, int64) error {
	return errors.New("store unreachable")
}

// A head that could not be stored at shutdown is stored by the next start.
func TestHeadStoredAtNextStart(t *testing.T) {
	e := newEnv(t)
	l, err := audit.New(t.Context(), e.st, audit.Options{Store: downStore{e.store}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.record(t, l, 3, 0)
	if err := l.Close(); err == nil {
		t.Fatal("close stored the head into a store that is down")
	}
	if heads, err := audit.Heads(t.Context(), e.store); err != nil || len(heads) != 0 {
		t.Fatalf("heads = %v, %v", heads, err)
	}
	l = e.open(t)
	defer l.Close()
	testutil.WaitFor(t, 10*time.Second, "the head at 3 stored soon after the start", func() bool {
		heads, err := audit.Heads(t.Context(), e.store)
		if err != nil {
			t.Fatal(err)
		}
		return len(heads) == 1 && heads[0].Seq == 3
	})
}

// Entries queued faster than the writer commits go in large groups (several INSERTs
// of many rows in one transaction); every one is stored, in order, on the chain.
func TestQueuedEntriesInLargeGroups(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	const n = 1000
	for i := range n {
		ev := audit.Event{Actor: "10.20.1.7", User: "guard", Action: audit.ActionSegmentList, Camera: "bastion-gate",
			Detail: map[string]any{"from": time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), "i": i}}
		for {
			err := l.Enqueue(ev)
			if err == nil {
				break
			}
			if !errors.Is(err, audit.ErrBacklog) {
				t.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := audit.Verify(t.Context(), e.st, e.store)
	if err != nil || got != n {
		t.Fatalf("verify = %d entries, %v; want %d", got, err, n)
	}
	i := 0
	if err := l.List(t.Context(), audit.Query{}, func(en audit.Entry) error {
		want := fmt.Sprintf(`{"from":"2026-11-30T08:00:00Z","i":%d}`, i)
		if en.Seq != int64(i+1) || en.Detail != want || en.User != "guard" {
			return fmt.Errorf("entry %d: seq %d, detail %s, user %q; want %d, %s, guard", i, en.Seq, en.Detail, en.User, i+1, want)
		}
		i++
		return nil
	}); err != nil || i != n {
		t.Fatalf("listed %d entries: %v", i, err)
	}
}
