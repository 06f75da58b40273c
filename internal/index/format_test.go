package index

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string
		want  int64
		err   error
	}{
		{"zero", "000000000000\n", 0, nil},
		{"offset", "000000001234\n", 1234, nil},
		{"largest", "999999999999\n", MaxOffset, nil},
		{"short", "00000000123\n", 0, ErrBadEntry},
		{"long", "0000000001234\n", 0, ErrBadEntry},
		{"no newline", "0000000012345", 0, ErrBadEntry},
		{"crlf", "00000000123\r\n", 0, ErrBadEntry},
		{"letter", "00000000a234\n", 0, ErrBadEntry},
		{"sign", "-00000001234\n", 0, ErrBadEntry},
		{"space", " 00000001234\n", 0, ErrBadEntry},
		{"empty", "", 0, ErrBadEntry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEntry([]byte(tc.entry))
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestAppendEntry(t *testing.T) {
	got, err := AppendEntry(nil, 42)
	require.NoError(t, err)
	assert.Equal(t, "000000000042\n", string(got))

	_, err = AppendEntry(nil, MaxOffset+1)
	assert.ErrorIs(t, err, ErrOffsetTooLarge)
	_, err = AppendEntry(nil, -1)
	assert.ErrorIs(t, err, ErrOffsetTooLarge)
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte("000000000000\n"))
	f.Add([]byte("999999999999\n"))
	f.Add([]byte("00000000x000\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseEntry(b)
		if err != nil {
			assert.ErrorIs(t, err, ErrBadEntry)
			return
		}
		// What parses round-trips to the same bytes.
		again, err := AppendEntry(nil, n)
		require.NoError(t, err)
		assert.Equal(t, string(b), string(again))
	})
}

func BenchmarkParseEntry(b *testing.B) {
	e := []byte("000123456789\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEntry(e); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", ""},
		{"one line", "a\n", "000000000000\n"},
		{"no final newline", "a\nbc", "000000000000\n000000000002\n"},
		{"empty lines", "\n\n", "000000000000\n000000000001\n"},
		{"crlf", "a\r\nb\r\n", "000000000000\n000000000003\n"},
		{"utf-8 counts bytes", "é\nx\n", "000000000000\n000000000003\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Of([]byte(tc.data))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}
