package playback

import (
	"encoding/binary"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
)

// movieTables is what the header of a movie is made of.
type movieTables struct {
	timescale  uint32
	mediaTime  int64     // edit list: where in the media playback starts
	editTicks  int64     // edit list: how long it plays
	mediaTicks int64     // the samples' total duration
	created    time.Time // when the first picture shown was captured
	in         *initInfo
	samples    []sample
	durs       []uint32 // per sample, on the movie's time axis
	perChunk   []uint32 // samples in each chunk
}

var be = binary.BigEndian

// box appends a box of type typ whose body fill appends.
func box(b []byte, typ string, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, typ...)
	b = fill(b)
	be.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// fullBox appends a full box (version and flags first).
func fullBox(b []byte, typ string, version uint8, flags uint32, fill func([]byte) []byte) []byte {
	return box(b, typ, func(b []byte) []byte {
		b = be.AppendUint32(b, uint32(version)<<24|flags)
		return fill(b)
	})
}

// mp4Time is seconds since 1904, as mvhd and mdhd count.
func mp4Time(t time.Time) uint32 { return uint32(t.Unix() + 2082844800) }

var matrix = []uint32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000}

// header returns ftyp, moov and the mdat header of a movie whose sample data is
// chunks, in order, right after it, and the size of that data. It sets each chunk's
// vOff: the header's length does not depend on them, so the chunk offsets are
// filled in once it is built.
func (t movieTables) header(chunks []chunk) ([]byte, int64) {
	b := make([]byte, 0, t.headerCap(len(chunks)))
	co64 := 0 // where the chunk offsets go
	b = box(b, "ftyp", func(b []byte) []byte {
		b = append(b, "isom"...)
		b = be.AppendUint32(b, 0x200)
		return append(b, "isomiso2mp41"...)
	})
	created := mp4Time(t.created)
	b = box(b, "moov", func(b []byte) []byte {
		b = fullBox(b, "mvhd", 0, 0, func(b []byte) []byte {
			b = be.AppendUint32(b, created)
			b = be.AppendUint32(b, created)
			b = be.AppendUint32(b, t.timescale)
			b = be.AppendUint32(b, uint32(t.editTicks))
			b = be.AppendUint32(b, 0x10000) // rate 1.0
			b = be.AppendUint16(b, 0x100)   // volume 1.0
			b = append(b, make([]byte, 10)...)
			for _, v := range matrix {
				b = be.AppendUint32(b, v)
			}
			b = append(b, make([]byte, 24)...)
			return be.AppendUint32(b, 2) // next track ID
		})
		return box(b, "trak", func(b []byte) []byte {
			b = fullBox(b, "tkhd", 0, 3, func(b []byte) []byte { // enabled, in movie
				b = be.AppendUint32(b, created)
				b = be.AppendUint32(b, created)
				b = be.AppendUint32(b, 1) // track ID
				b = be.AppendUint32(b, 0)
				b = be.AppendUint32(b, uint32(t.editTicks))
				b = append(b, make([]byte, 8+2+2+2+2)...) // reserved, layer, group, volume, reserved
				for _, v := range matrix {
					b = be.AppendUint32(b, v)
				}
				b = be.AppendUint32(b, t.in.width)
				return be.AppendUint32(b, t.in.height)
			})
			b = box(b, "edts", func(b []byte) []byte {
				return fullBox(b, "elst", 1, 0, func(b []byte) []byte {
					b = be.AppendUint32(b, 1)
					b = be.AppendUint64(b, uint64(t.editTicks))
					b = be.AppendUint64(b, uint64(t.mediaTime))
					return be.AppendUint32(b, 0x10000) // rate 1.0
				})
			})
			return box(b, "mdia", func(b []byte) []byte {
				b = fullBox(b, "mdhd", 0, 0, func(b []byte) []byte {
					b = be.AppendUint32(b, created)
					b = be.AppendUint32(b, created)
					b = be.AppendUint32(b, t.timescale)
					b = be.AppendUint32(b, uint32(t.mediaTicks))
					b = be.AppendUint16(b, 0x55c4) // "und"
					return be.AppendUint16(b, 0)
				})
				b = appendOr(b, t.in.hdlr, func(b []byte) []byte {
					return fullBox(b, "hdlr", 0, 0, func(b []byte) []byte {
						b = be.AppendUint32(b, 0)
						b = append(b, "vide"...)
						b = append(b, make([]byte, 12)...)
						return append(b, "VideoHandler\x00"...)
					})
				})
				return box(b, "minf", func(b []byte) []byte {
					b = appendOr(b, t.in.vmhd, func(b []byte) []byte {
						return fullBox(b, "vmhd", 0, 1, func(b []byte) []byte { return append(b, make([]byte, 8)...) })
					})
					b = appendOr(b, t.in.dinf, func(b []byte) []byte {
						return box(b, "dinf", func(b []byte) []byte {
							return fullBox(b, "dref", 0, 0, func(b []byte) []byte {
								b = be.AppendUint32(b, 1)
								return fullBox(b, "url ", 0, 1, func(b []byte) []byte { return b })
							})
						})
					})
					return box(b, "stbl", func(b []byte) []byte {
						b = t.stbl(b, len(chunks))
						co64 = len(b) - 8*len(chunks)
						return b
					})
				})
			})
		})
	})
	// The wall-clock time of the first picture shown, as segments date their
	// fragments, so a clip alone says when it was recorded.
	b = mp4.AppendPrft(b, mp4.Prft{TrackID: 1, Flags: mp4.PrftCaptureTime, Time: t.created,
		MediaTime: uint64(max(t.mediaTime, 0))})
	// mdat with a 64-bit size: a movie may pass 4 GiB.
	b = be.AppendUint32(b, 1)
	b = append(b, "mdat"...)
	b = be.AppendUint64(b, 0)
	var dataSize int64
	for i := range chunks {
		chunks[i].vOff = int64(len(b)) + dataSize
		be.PutUint64(b[co64+8*i:], uint64(chunks[i].vOff))
		dataSize += chunks[i].n
	}
	be.PutUint64(b[len(b)-8:], uint64(16+dataSize))
	return b, dataSize
}

// headerCap is about the length of the header, a little over: its sample tables,
// counted, and room for the boxes around them.
func (t movieTables) headerCap(chunks int) int {
	n := 4096 + len(t.in.stsd) + len(t.in.hdlr) + len(t.in.vmhd) + len(t.in.dinf)
	n += 4*len(t.samples) + 8*chunks + 12*len(t.perChunk) // stsz, co64, stsc
	for i := range t.samples {
		if i == 0 || t.durs[i] != t.durs[i-1] {
			n += 8 // stts
		}
		if i == 0 || t.samples[i].cto != t.samples[i-1].cto {
			n += 8 // ctts
		}
		if t.samples[i].sync {
			n += 4 // stss
		}
	}
	return n
}

// appendOr appends raw, or what def appends when raw is nil.
func appendOr(b, raw []byte, def func([]byte) []byte) []byte {
	if raw != nil {
		return append(b, raw...)
	}
	return def(b)
}

// stbl appends the sample tables, with room for chunks chunk offsets at the end.
func (t movieTables) stbl(b []byte, chunks int) []byte {
	b = append(b, t.in.stsd...)
	b = fullBox(b, "stts", 0, 0, func(b []byte) []byte {
		at := len(b)
		b = be.AppendUint32(b, 0)
		var n uint32
		for i := 0; i < len(t.durs); {
			j := i
			for j < len(t.durs) && t.durs[j] == t.durs[i] {
				j++
			}
			b = be.AppendUint32(b, uint32(j-i))
			b = be.AppendUint32(b, t.durs[i])
			n++
			i = j
		}
		be.PutUint32(b[at:], n)
		return b
	})
	anyCTO, negCTO, allSync := false, false, true
	for _, s := range t.samples {
		anyCTO = anyCTO || s.cto != 0
		negCTO = negCTO || s.cto < 0
		allSync = allSync && s.sync
	}
	if anyCTO {
		var v uint8
		if negCTO {
			v = 1
		}
		b = fullBox(b, "ctts", v, 0, func(b []byte) []byte {
			at := len(b)
			b = be.AppendUint32(b, 0)
			var n uint32
			for i := 0; i < len(t.samples); {
				j := i
				for j < len(t.samples) && t.samples[j].cto == t.samples[i].cto {
					j++
				}
				b = be.AppendUint32(b, uint32(j-i))
				b = be.AppendUint32(b, uint32(t.samples[i].cto))
				n++
				i = j
			}
			be.PutUint32(b[at:], n)
			return b
		})
	}
	if !allSync {
		b = fullBox(b, "stss", 0, 0, func(b []byte) []byte {
			at := len(b)
			b = be.AppendUint32(b, 0)
			var n uint32
			for i, s := range t.samples {
				if s.sync {
					b = be.AppendUint32(b, uint32(i+1))
					n++
				}
			}
			be.PutUint32(b[at:], n)
			return b
		})
	}
	b = fullBox(b, "stsz", 0, 0, func(b []byte) []byte {
		b = be.AppendUint32(b, 0)
		b = be.AppendUint32(b, uint32(len(t.samples)))
		for _, s := range t.samples {
			b = be.AppendUint32(b, s.size)
		}
		return b
	})
	b = fullBox(b, "stsc", 0, 0, func(b []byte) []byte {
		at := len(b)
		b = be.AppendUint32(b, 0)
		var n uint32
		for i, c := range t.perChunk {
			if i > 0 && t.perChunk[i-1] == c {
				continue
			}
			b = be.AppendUint32(b, uint32(i+1))
			b = be.AppendUint32(b, c)
			b = be.AppendUint32(b, 1) // sample description index
			n++
		}
		be.PutUint32(b[at:], n)
		return b
	})
	return fullBox(b, "co64", 0, 0, func(b []byte) []byte {
		b = be.AppendUint32(b, uint32(chunks))
		return append(b, make([]byte, 8*chunks)...)
	})
}
