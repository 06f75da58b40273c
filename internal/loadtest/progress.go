package loadtest

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress shows on standard error what the harness is doing: one status
// line per step, and on a terminal a line that updates in place with a
// bar or a countdown. Its methods are safe for concurrent use; a nil
// *Progress shows nothing.
type Progress struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu       sync.Mutex
	live     bool // a line without its newline is on the terminal
	lastPct  int64
	lastDraw time.Time
}

// NewProgress shows progress on w; tty says whether w is a terminal, where
// lines are updated in place.
func NewProgress(w io.Writer, tty bool) *Progress {
	return &Progress{w: w, tty: tty, start: time.Now(), lastPct: -1}
}

func (p *Progress) stamp() string {
	d := time.Since(p.start).Round(time.Second)
	return fmt.Sprintf("[%02d:%02d]", int(d.Minutes()), int(d.Seconds())%60)
}

// Printf prints a status line.
func (p *Progress) Printf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, "%s %s\n", p.stamp(), fmt.Sprintf(format, args...))
	p.lastPct = -1
}

func (p *Progress) clear() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

// Bar shows that done of total is done. On a terminal it redraws a bar at
// most ten times a second; elsewhere it prints a line at every quarter.
func (p *Progress) Bar(label string, done, total int64) {
	if p == nil || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := min(100*done/total, 100)
	if !p.tty {
		if pct/25 > p.lastPct/25 || p.lastPct < 0 {
			fmt.Fprintf(p.w, "%s %s %3d%% (%s of %s)\n", p.stamp(), label, pct, FormatSize(done), FormatSize(total))
			p.lastPct = pct
		}
		return
	}
	if time.Since(p.lastDraw) < 100*time.Millisecond && done < total {
		return
	}
	p.lastDraw = time.Now()
	const width = 30
	fill := int(int64(width) * pct / 100)
	fmt.Fprintf(p.w, "\r\033[K%s %s [%s%s] %3d%% %s/%s", p.stamp(), label,
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, FormatSize(done), FormatSize(total))
	p.live = true
}

// Countdown shows label with the time left of d, updated each second on
// a terminal, until the returned function is called.
func (p *Progress) Countdown(label string, d time.Duration) (stop func()) {
	if p == nil || !p.tty {
		return func() {}
	}
	end := time.Now().Add(d)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			p.mu.Lock()
			left := max(time.Until(end), 0).Round(time.Second)
			fmt.Fprintf(p.w, "\r\033[K%s %s: %v left", p.stamp(), label, left)
			p.live = true
			p.mu.Unlock()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		p.mu.Lock()
		p.clear()
		p.mu.Unlock()
	}
}
