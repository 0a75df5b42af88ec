package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConsolePlainOutput(t *testing.T) {
	var out bytes.Buffer
	c := newDemoConsole(&out)
	if c.tty {
		t.Fatal("a buffer taken for a terminal")
	}
	if c.statusInterval() != demoPlainStatusInterval {
		t.Errorf("status interval %v, want %v", c.statusInterval(), demoPlainStatusInterval)
	}
	c.logf("before %s", "start")
	c.showStatus("status one")
	c.setStart(time.Now().Add(-1500 * time.Millisecond))
	c.logf("after")
	c.endStatus()
	got := out.String()
	want := "before start\nstatus one\n  +1.5s  after\n"
	if got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if strings.Contains(got, "\033") {
		t.Error("escape codes in plain output")
	}
}

func TestConsoleTerminalRedrawsStatus(t *testing.T) {
	var out bytes.Buffer
	c := &demoConsole{w: &out, tty: true, width: func() int { return 12 }}
	c.showStatus("status that is too wide")
	c.logf("event")
	c.endStatus()
	c.logf("after")
	want := demoClearLine + "status that" + // cut to the width less one
		demoClearLine + "event\n" + "status that" +
		demoClearLine +
		"after\n"
	if got := out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if demoIsTerminal(f) {
		t.Error("a regular file taken for a terminal")
	}
	if demoIsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer taken for a terminal")
	}
}
