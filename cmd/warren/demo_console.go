package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Status refresh intervals: in place on a terminal, a plain line otherwise
// (a log file or CI output should not get four lines a second).
const (
	demoTTYStatusInterval   = 250 * time.Millisecond
	demoPlainStatusInterval = 2 * time.Second
)

// demoClearLine returns the cursor to column 0 and erases the line.
const demoClearLine = "\r\033[K"

// demoDefaultWidth is assumed when a terminal does not say how wide it is.
const demoDefaultWidth = 80

// demoIsTerminal reports whether w is a character device, such as a terminal.
func demoIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// demoConsole serializes the demo's output: log lines, and one status line that
// a terminal redraws in place under them and other outputs get as a plain
// line now and then.
type demoConsole struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
	// width returns the terminal's width: a status line longer than that
	// would wrap, and "\r\033[K" erases only its last row.
	width  func() int
	start  time.Time // zero until publishing starts; log lines show offsets from it
	status string    // the status line on screen (tty only), "" if none
}

// newDemoConsole returns a console on w; w is treated as a terminal when it is
// a character device.
func newDemoConsole(w io.Writer) *demoConsole {
	c := &demoConsole{w: w, tty: demoIsTerminal(w), width: func() int { return demoDefaultWidth }}
	if f, ok := w.(*os.File); ok && c.tty {
		c.width = func() int {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
				return cols
			}
			return demoDefaultWidth
		}
	}
	return c
}

// statusInterval is how often the status line should be refreshed.
func (c *demoConsole) statusInterval() time.Duration {
	if c.tty {
		return demoTTYStatusInterval
	}
	return demoPlainStatusInterval
}

// setStart makes log lines show their offset from t.
func (c *demoConsole) setStart(t time.Time) {
	c.mu.Lock()
	c.start = t
	c.mu.Unlock()
}

// demoOffsetText formats t as an offset from start, such as "+12.3s", or
// "" before the start is known.
func demoOffsetText(start, t time.Time) string {
	if start.IsZero() {
		return ""
	}
	return fmt.Sprintf("+%.1fs", t.Sub(start).Seconds())
}

// logf prints one line, stamped with its offset once publishing has started;
// on a terminal the status line is redrawn under it.
func (c *demoConsole) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if stamp := demoOffsetText(c.start, time.Now()); stamp != "" {
		line = fmt.Sprintf("%7s  %s", stamp, line)
	}
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, demoClearLine+line+"\n"+c.status)
		return
	}
	fmt.Fprintln(c.w, line)
}

// showStatus draws the status line: in place on a terminal, else as a line.
func (c *demoConsole) showStatus(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		fmt.Fprintln(c.w, line)
		return
	}
	if w := c.width(); len(line) >= w {
		line = line[:max(w-1, 0)]
	}
	c.status = line
	fmt.Fprint(c.w, demoClearLine+line)
}

// endStatus removes the status line from a terminal.
func (c *demoConsole) endStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, demoClearLine)
	}
	c.status = ""
}
