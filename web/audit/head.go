package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// HeadPrefix is where chain heads live in the store; keys sort by seq.
const HeadPrefix = storage.ReservedPrefix + "audit/"

// Head is a stored chain head: the entry seq had this hash.
type Head struct {
	Seq    int64     `json:"seq"`
	Hash   string    `json:"hash"` // hex
	Stored time.Time `json:"stored"`
}

// HeadKey is the store key of the head at seq: zero-padded so keys sort by seq.
func HeadKey(seq int64) string { return fmt.Sprintf("%shead-%020d.json", HeadPrefix, seq) }

func parseHeadKey(key string) (int64, bool) {
	s, ok := strings.CutPrefix(key, HeadPrefix+"head-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".json")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// Anchor stores the current head, if it moved since the last one stored.
func (l *Log) Anchor(ctx context.Context) error {
	l.mu.Lock()
	seq, hash := l.seq, l.hash
	l.mu.Unlock()
	return l.anchorHead(ctx, seq, hash)
}

// anchorHead stores the head at seq unless one at or after it is stored.
func (l *Log) anchorHead(ctx context.Context, seq int64, hash []byte) error {
	l.mu.Lock()
	done := l.anchored
	l.mu.Unlock()
	if seq == 0 || seq <= done {
		return nil
	}
	b, _ := json.Marshal(Head{Seq: seq, Hash: hex.EncodeToString(hash), Stored: time.Now().UTC()})
	if err := l.store.Put(ctx, HeadKey(seq), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("store audit head %d: %w", seq, err)
	}
	l.mu.Lock()
	l.anchored = max(l.anchored, seq)
	l.mu.Unlock()
	return nil
}

// lastHead is the seq of the newest stored head (0: none).
func lastHead(ctx context.Context, st storage.Store) (int64, error) {
	var last int64
	err := st.List(ctx, HeadPrefix, func(o storage.ObjectInfo) error {
		if n, ok := parseHeadKey(o.Key); ok {
			last = max(last, n)
		}
		return nil
	})
	return last, err
}

// Heads reads every stored head, in seq order.
func Heads(ctx context.Context, st storage.Store) ([]Head, error) {
	var keys []string
	if err := st.List(ctx, HeadPrefix, func(o storage.ObjectInfo) error {
		if _, ok := parseHeadKey(o.Key); ok {
			keys = append(keys, o.Key)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list audit heads: %w", err)
	}
	heads := make([]Head, 0, len(keys))
	for _, k := range keys {
		rc, err := st.Get(ctx, k, 0, -1)
		if err != nil {
			return nil, fmt.Errorf("read audit head %s: %w", k, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read audit head %s: %w", k, err)
		}
		var h Head
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("audit head %s: %w", k, err)
		}
		if n, _ := parseHeadKey(k); n != h.Seq {
			return nil, fmt.Errorf("audit head %s holds seq %d: the key and its content disagree", k, h.Seq)
		}
		heads = append(heads, h)
	}
	return heads, nil
}
