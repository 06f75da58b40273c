//go:build !unix

package main

import "math"

// hardOpenFiles is unknown here: no limit.
func hardOpenFiles() int { return math.MaxInt }
