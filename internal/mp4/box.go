// Package mp4 reads and writes the ISO BMFF (MP4) boxes Straja needs: the fragments
// the recorder writes, the moov and moof boxes storage indexes segments by, and the
// sample tables of the clips the camera simulator plays. It is a leaf that recorder,
// storage and streaming may all import; it knows nothing of cameras or streams.
package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of a box header without a 64-bit size.
const HeaderSize = 8

// ErrTruncated marks a box that claims more bytes than its parent holds.
var ErrTruncated = errors.New("truncated box")

// Box is one box read from a buffer: its type, its body (without the header) and
// where the box starts in that buffer.
type Box struct {
	Type   string
	Body   []byte
	Offset int
}

// ReadBoxes splits buf into consecutive boxes. A box of size 0 runs to the end of buf.
func ReadBoxes(buf []byte) ([]Box, error) {
	var boxes []Box
	for off := 0; off < len(buf); {
		if len(buf)-off < HeaderSize {
			return nil, fmt.Errorf("box at %d: %w", off, ErrTruncated)
		}
		size := uint64(binary.BigEndian.Uint32(buf[off:]))
		typ := string(buf[off+4 : off+8])
		hdr := uint64(HeaderSize)
		switch size {
		case 0:
			size = uint64(len(buf) - off)
		case 1:
			if len(buf)-off < 16 {
				return nil, fmt.Errorf("box %q at %d: %w", typ, off, ErrTruncated)
			}
			size = binary.BigEndian.Uint64(buf[off+8:])
			hdr = 16
		}
		if size < hdr || size > uint64(len(buf)-off) {
			return nil, fmt.Errorf("box %q at %d: size %d: %w", typ, off, size, ErrTruncated)
		}
		boxes = append(boxes, Box{Type: typ, Body: buf[off+int(hdr) : off+int(size)], Offset: off})
		off += int(size)
	}
	return boxes, nil
}

// Child returns the body of the first child box of the given type inside body.
func Child(body []byte, typ string) ([]byte, bool) {
	boxes, err := ReadBoxes(body)
	if err != nil {
		return nil, false
	}
	for _, b := range boxes {
		if b.Type == typ {
			return b.Body, true
		}
	}
	return nil, false
}

// Path follows a chain of child boxes.
func Path(body []byte, types ...string) ([]byte, bool) {
	for _, t := range types {
		var ok bool
		if body, ok = Child(body, t); !ok {
			return nil, false
		}
	}
	return body, true
}

func appendBoxHeader(b []byte, size int, typ string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(size)), typ...)
}

// reader takes big-endian fields off the front of a box body.
type reader struct {
	b    []byte
	name string
	err  error
}

func (r *reader) uint(n int) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%s: %w", r.name, ErrTruncated)
		return 0
	}
	var v uint64
	for _, c := range r.b[:n] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 { return uint32(r.uint(4)) }
