package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

// VerifyError names the first entry where the trail cannot be trusted.
type VerifyError struct {
	Seq int64
	Msg string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("audit entry %d: %s", e.Seq, e.Msg) }

// Verify recomputes the whole chain in st and checks it against every head stored in
// store. It returns the number of entries, or a *VerifyError naming the first entry
// that breaks the chain or disagrees with a stored head.
func Verify(ctx context.Context, st *state.State, store storage.Store) (int64, int, error) {
	heads, err := Heads(ctx, store)
	if err != nil {
		return 0, 0, err
	}
	want := make(map[int64]string, len(heads))
	for _, h := range heads {
		want[h.Seq] = h.Hash
	}
	var n, last int64
	prev := make([]byte, sha256.Size)
	errBroken := errors.New("broken")
	var verr *VerifyError
	err = st.AuditRows(ctx, state.AuditQuery{}, func(e Entry) error {
		switch {
		case e.Seq != last+1:
			verr = &VerifyError{last + 1, fmt.Sprintf("missing: the next entry stored is %d (entries deleted)", e.Seq)}
		case !bytes.Equal(e.PrevHash, prev):
			verr = &VerifyError{e.Seq, "prev_hash does not match the hash of the entry before it (chain broken)"}
		case !bytes.Equal(Hash(e), e.Hash):
			verr = &VerifyError{e.Seq, "hash mismatch: the entry was changed after it was written"}
		}
		if h, ok := want[e.Seq]; ok && verr == nil && h != hex.EncodeToString(e.Hash) {
			verr = &VerifyError{e.Seq, fmt.Sprintf("disagrees with the head stored at %s: "+
				"the chain was recomputed after an edit at or before this entry", HeadKey(e.Seq))}
		}
		if verr != nil {
			return errBroken
		}
		n, last, prev = n+1, e.Seq, e.Hash
		return nil
	})
	if verr != nil {
		return n, len(heads), verr
	}
	if err != nil {
		return n, len(heads), err
	}
	for _, h := range heads {
		if h.Seq <= last {
			continue
		}
		return n, len(heads), &VerifyError{last + 1, fmt.Sprintf("stored head seq %d is beyond the database's last entry %d "+
			"(entries deleted)", h.Seq, last)}
	}
	return n, len(heads), nil
}
