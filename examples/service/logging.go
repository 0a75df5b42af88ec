package main

import (
	"io"
	"log/slog"
)

// newLogger returns the service's logger: LOG_FORMAT text or json, at
// LOG_LEVEL.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
