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

// header returns ftyp, moov and the mdat header for chunk offsets offs and dataSize
// bytes of sample data. Its length does not depend on offs or dataSize.
func (t movieTables) header(offs []int64, dataSize int64) []byte {
	b := make([]byte, 0, 4096+len(t.samples)*12)
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
					return box(b, "stbl", func(b []byte) []byte { return t.stbl(b, offs) })
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
	return be.AppendUint64(b, uint64(16+dataSize))
}

// appendOr appends raw, or what def appends when raw is nil.
func appendOr(b, raw []byte, def func([]byte) []byte) []byte {
	if raw != nil {
		return append(b, raw...)
	}
	return def(b)
}

func (t movieTables) stbl(b []byte, offs []int64) []byte {
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
		b = be.AppendUint32(b, uint32(len(offs)))
		for _, o := range offs {
			b = be.AppendUint64(b, uint64(o))
		}
		return b
	})
}
