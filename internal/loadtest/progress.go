package loadtest

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows on standard error what the harness is doing: one status
// line per step and, on a terminal, a bar (schollz/progressbar) for long
// steps. Its methods are safe for concurrent use; a nil *Progress shows
// nothing.
type Progress struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu    sync.Mutex
	label string
	pb    *progressbar.ProgressBar
}

// NewProgress shows progress on w; tty says whether w is a terminal, where
// bars are drawn.
func NewProgress(w io.Writer, tty bool) *Progress {
	return &Progress{w: w, tty: tty, start: time.Now()}
}

// printf prints a status line.
func (p *Progress) printf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endBar()
	d := time.Since(p.start).Round(time.Second)
	fmt.Fprintf(p.w, "[%02d:%02d] %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, args...))
}

func (p *Progress) endBar() {
	if p.pb != nil {
		_ = p.pb.Finish()
		p.pb, p.label = nil, ""
	}
}

// bar shows that done of total bytes of label are done, on a terminal.
func (p *Progress) bar(label string, done, total int64) {
	if p == nil || !p.tty || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.label != label {
		p.newBar(label, total)
	}
	_ = p.pb.Set64(done)
}

// newBar starts a bar of total bytes, or with total -1 a spinner that
// shows the time elapsed and redraws itself once drawn.
func (p *Progress) newBar(label string, total int64) {
	p.endBar()
	p.label = label
	p.pb = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(label), progressbar.OptionShowBytes(total > 0),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(total < 0))
}

// countdown shows label, the time d it will take and the time elapsed,
// on a terminal, until the returned function is called.
func (p *Progress) countdown(label string, d time.Duration) (stop func()) {
	if p == nil || !p.tty {
		return func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.newBar(fmt.Sprintf("%s, %v", label, d), -1)
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.endBar()
	}
}
