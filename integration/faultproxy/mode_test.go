package faultproxy

import "testing"

func TestModeString(t *testing.T) {
	tests := []struct {
		mode Mode
		want string
	}{
		{PassThrough, "pass-through"},
		{Delayed, "delayed"},
		{Refusing, "refusing"},
		{Blackholed, "blackholed"},
		{Closed, "closed"},
		{Mode(42), "Mode(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.mode.String(); got != tt.want {
				t.Errorf("Mode(%d).String() = %q, want %q", int(tt.mode), got, tt.want)
			}
		})
	}
}
