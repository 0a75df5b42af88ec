package main

import (
	"runtime/debug"
	"testing"
)

func TestVCSRevision(t *testing.T) {
	tests := []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"none", nil, "(no VCS information)"},
		{"clean", []debug.BuildSetting{{Key: "vcs.revision", Value: "b2c341a0123456789"}, {Key: "vcs.modified", Value: "false"}}, "b2c341a01234"},
		{"dirty", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}, "abc with uncommitted changes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vcsRevision(tt.settings); got != tt.want {
				t.Errorf("vcsRevision = %q, want %q", got, tt.want)
			}
		})
	}
}
