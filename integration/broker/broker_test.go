package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestAddr(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"amqp://guest:guest@127.0.0.1:5673/", "127.0.0.1:5673"},
		{"amqp://guest:guest@localhost/", "localhost:5672"},
		{"amqps://u:p@broker.example/vh", "broker.example:5671"},
		{"http://not-amqp/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			b := &Broker{URL: tt.url}
			if got := b.Addr(); got != tt.want {
				t.Errorf("Addr() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestURLWith(t *testing.T) {
	const base = "amqp://guest:guest@127.0.0.1:5673/"
	tests := []struct {
		name             string
		user, pass, vh   string
		want             string
		wantUser, wantPw string
		wantVhost        string
	}{
		{"default vhost", "alice", "secret", "", "amqp://alice:secret@127.0.0.1:5673/", "alice", "secret", "/"},
		{"named vhost", "alice", "secret", "v1", "amqp://alice:secret@127.0.0.1:5673/v1", "alice", "secret", "v1"},
		{"slash vhost", "alice", "secret", "/", "amqp://alice:secret@127.0.0.1:5673/%2F", "alice", "secret", "/"},
		{"escaped", "a@b", "p:w/d?", "team a/b", "", "a@b", "p:w/d?", "team a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Broker{URL: base}
			got := b.URLWith(tt.user, tt.pass, tt.vh)
			if tt.want != "" && got != tt.want {
				t.Errorf("URLWith() = %q, want %q", got, tt.want)
			}
			u, err := amqp.ParseURI(got)
			if err != nil {
				t.Fatalf("amqp.ParseURI(%q): %v", got, err)
			}
			if u.Username != tt.wantUser || u.Password != tt.wantPw || u.Vhost != tt.wantVhost || u.Port != 5673 {
				t.Errorf("URLWith() = %q parses as user %q pass %q vhost %q port %d", got, u.Username, u.Password, u.Vhost, u.Port)
			}
		})
	}
}

func TestURLVia(t *testing.T) {
	b := &Broker{URL: "amqp://alice:pw@127.0.0.1:5673/v%2F1"}
	if got, want := b.URLVia("127.0.0.1:40000"), "amqp://alice:pw@127.0.0.1:40000/v%2F1"; got != want {
		t.Errorf("URLVia() = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	got := redact("amqp://guest:hunter2@127.0.0.1:5672/")
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "guest") {
		t.Errorf("redact() = %q, want the user without the password", got)
	}
}

func TestCloseBrokerLiteral(t *testing.T) {
	b := &Broker{URL: "amqp://guest:guest@127.0.0.1:1/"}
	for range 2 {
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	var stops atomic.Int32
	release := make(chan struct{})
	stopErr := errors.New("stop failed")
	b := newBroker("amqp://guest:guest@127.0.0.1:1/", SourceLocal, &faults{}, func(context.Context) error {
		stops.Add(1)
		<-release
		return stopErr
	})

	// A caller whose context ends gives up waiting; the stop goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a short context = %v, want DeadlineExceeded", err)
	}
	if err := b.Faults.AddVhost(context.Background(), "v"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddVhost after Close = %v, want ErrClosed", err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
			defer cancel()
			errs[i] = b.Close(ctx)
		}()
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, stopErr) {
			t.Errorf("Close #%d = %v, want the stop error", i, err)
		}
	}
	if n := stops.Load(); n != 1 {
		t.Errorf("stop ran %d times, want 1", n)
	}
}
