// Package index reads and writes the line index: one 13-byte entry per line,
// 12 zero-padded ASCII digits of the byte offset where the line starts, then
// '\n', so the entry of line i (counted from 0) is at byte 13*i.
package index

import (
	"errors"
	"fmt"
)

const (
	// EntrySize is the size of one index entry in bytes.
	EntrySize = 13
	// Digits is the number of ASCII digits in an entry.
	Digits = 12
	// MaxOffset is the largest byte offset an entry can hold.
	MaxOffset = 999_999_999_999
)

var (
	// ErrBadEntry reports an entry that is not 12 ASCII digits and '\n'.
	ErrBadEntry = errors.New("malformed index entry")
	// ErrOffsetTooLarge reports an offset that does not fit in 12 digits.
	ErrOffsetTooLarge = errors.New("offset does not fit in 12 digits")
)

// ParseEntry parses one entry: exactly 12 ASCII digits followed by '\n'.
// It does not allocate.
func ParseEntry(b []byte) (int64, error) {
	if len(b) != EntrySize || b[Digits] != '\n' {
		return 0, ErrBadEntry
	}
	var n int64
	for _, c := range b[:Digits] {
		if c < '0' || c > '9' {
			return 0, ErrBadEntry
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// AppendEntry appends the entry for offset to dst.
func AppendEntry(dst []byte, offset int64) ([]byte, error) {
	if offset < 0 || offset > MaxOffset {
		return dst, fmt.Errorf("offset %d: %w", offset, ErrOffsetTooLarge)
	}
	var e [EntrySize]byte
	PutEntry(e[:], offset)
	return append(dst, e[:]...), nil
}

// PutEntry writes the entry for offset into the first 13 bytes of dst.
// The caller guarantees 0 <= offset <= MaxOffset and len(dst) >= 13.
func PutEntry(dst []byte, offset int64) {
	_ = dst[Digits]
	dst[Digits] = '\n'
	for i := Digits - 1; i >= 0; i-- {
		dst[i] = byte('0' + offset%10)
		offset /= 10
	}
}

// Of returns the index of data held in memory. It is the plain statement of
// the format that tests compare the fast builders against.
func Of(data []byte) ([]byte, error) {
	var out []byte
	start := 0
	for start < len(data) {
		var err error
		if out, err = AppendEntry(out, int64(start)); err != nil {
			return nil, err
		}
		nl := -1
		for i := start; i < len(data); i++ {
			if data[i] == '\n' {
				nl = i
				break
			}
		}
		if nl < 0 {
			break
		}
		start = nl + 1
	}
	return out, nil
}
