package storage

import (
	"errors"
	"sync/atomic"
)

// ErrHeld is returned (wrapped) when deleting an object an evidence hold protects.
var ErrHeld = errors.New("held as evidence")

// HeldFunc reports whether an evidence hold protects the object at key now. It is
// called on every Put and Delete, so it must be cheap and safe for concurrent use.
type HeldFunc func(key string) bool

// HoldGuard is a store that enforces evidence holds itself once told which keys are
// held: its Delete refuses a held key with ErrHeld, and an S3 bucket with Object Lock
// puts held objects under an S3 legal hold as they are stored.
type HoldGuard interface {
	SetHeld(f HeldFunc)
}

// heldCheck holds a store's HeldFunc; the zero value holds nothing.
type heldCheck struct{ f atomic.Pointer[HeldFunc] }

// SetHeld makes f the store's hold check (nil: nothing is held).
func (h *heldCheck) SetHeld(f HeldFunc) {
	if f == nil {
		h.f.Store(nil)
		return
	}
	h.f.Store(&f)
}

func (h *heldCheck) held(key string) bool {
	f := h.f.Load()
	return f != nil && (*f)(key)
}
