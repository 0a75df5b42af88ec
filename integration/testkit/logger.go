package testkit

import (
	"io"
	"log/slog"
	"testing"
)

// Logger returns a logger that writes records at level and above to the
// test's log when the test runs verbosely, and discards them otherwise.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// QuietLogger is Logger at Warn: dial failures, dead peers, stalls.
func QuietLogger(t testing.TB) *slog.Logger { return Logger(t, slog.LevelWarn) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
