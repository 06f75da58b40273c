//go:build !race

package lineserver

const raceEnabled = false
