// Package etag compares entity tags as a conditional request asks: the
// shard and the router answer If-None-Match alike.
package etag

import "strings"

// Matches reports whether an If-None-Match header, given as its field
// values, names tag or is "*", with the weak comparison RFC 9110
// prescribes for it.
func Matches(header []string, tag string) bool {
	for _, h := range header {
		for t, rest, more := "", h, true; more; {
			t, rest, more = strings.Cut(rest, ",")
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag {
				return true
			}
		}
	}
	return false
}
