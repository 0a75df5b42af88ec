package conn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/reconnect"
)

func TestOptionsValidate(t *testing.T) {
	good := "amqp://guest:guest@127.0.0.1:5672/"
	tests := []struct {
		name    string
		opts    Options
		wantErr string // substring; "" means valid
	}{
		{"minimal", Options{URLs: []string{good}}, ""},
		{"no URLs", Options{}, "at least one broker URL"},
		{"bad scheme", Options{URLs: []string{"http://u:hunter2@h/"}}, "URLs[0] http://u:***@h/"},
		{"unparseable URL", Options{URLs: []string{"amqp://u:hunter2@h:notaport/"}}, "URLs[0]"},
		{"negative dial timeout", Options{URLs: []string{good}, DialTimeout: -time.Second}, "DialTimeout must not be negative"},
		{"sub-second heartbeat", Options{URLs: []string{good}, Heartbeat: 500 * time.Millisecond}, "at least 1s"},
		{"dead-peer limit of one heartbeat", Options{URLs: []string{good}, Heartbeat: 10 * time.Second, DeadPeerLimit: 10 * time.Second}, "DeadPeerLimit"},
		{"dead-peer limit of 5/4 heartbeat", Options{URLs: []string{good}, Heartbeat: 4 * time.Second, DeadPeerLimit: 5 * time.Second}, ""},
		{"negative event buffer", Options{URLs: []string{good}, EventBuffer: -1}, "EventBuffer"},
		{"bad policy", Options{URLs: []string{good}, Reconnect: reconnect.Policy{Multiplier: 0.5}}, "Reconnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.withDefaults().validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("validate() = %v, does not wrap ErrInvalidOptions", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("validate() = %v leaks the password", err)
			}
		})
	}
}

func TestNewCopiesOptions(t *testing.T) {
	urls := []string{"amqp://127.0.0.1:1/"}
	s, err := New(Options{URLs: urls, OnEvent: func(Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)
	urls[0] = "amqp://changed:1/"
	if s.opts.URLs[0] != "amqp://127.0.0.1:1/" {
		t.Errorf("supervisor saw the caller's later edit: %q", s.opts.URLs[0])
	}
}

func TestDefaultOptionsIsFresh(t *testing.T) {
	a := DefaultOptions()
	a.Heartbeat = time.Hour
	if b := DefaultOptions(); b.Heartbeat != DefaultHeartbeat {
		t.Errorf("DefaultOptions shares state: Heartbeat = %v", b.Heartbeat)
	}
	if a := DefaultOptions(); a.DeadPeerLimit != a.Heartbeat*5/4 || a.EventBuffer != 256 || a.DialTimeout != 10*time.Second {
		t.Errorf("unexpected defaults: %+v", a)
	}
}
