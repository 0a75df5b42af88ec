package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// fakeScripts writes stand-ins for rabbitmq-server, rabbitmqctl and epmd, so
// the boot failure paths run without Erlang. server is the body of the fake
// rabbitmq-server script.
func fakeScripts(t *testing.T, server string) (scripts, epmd string) {
	t.Helper()
	scripts = t.TempDir()
	files := map[string]string{
		"rabbitmq-server": server,
		// `wait` blocks until killed, as the real one does for a node that
		// never comes up; everything else succeeds.
		"rabbitmqctl":  `for a in "$@"; do [ "$a" = wait ] && exec sleep 300; done; exit 0`,
		"rabbitmq-env": "",
		"epmd":         `echo "epmd: entering the main select() loop" >&2; exec sleep 300`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return scripts, filepath.Join(scripts, "epmd")
}

func TestStartLocalFailureCleansUp(t *testing.T) {
	tests := []struct {
		name         string
		server       string
		wantAttempts int
		wantPortErr  bool
	}{
		{"node crashes", `echo attempt >> "$FAKE_ATTEMPTS"; echo "boot failed: boom"; exit 1`, 1, false},
		{"port taken is retried", `echo attempt >> "$FAKE_ATTEMPTS"; echo "{listen_error,eaddrinuse}"; exit 1`, bootAttempts, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			attempts := filepath.Join(t.TempDir(), "attempts")
			t.Setenv("FAKE_ATTEMPTS", attempts)
			scripts, epmd := fakeScripts(t, tt.server)

			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			n, err := startLocal(ctx, scripts, epmd, Options{})
			if n != nil || !errors.Is(err, ErrBootFailed) {
				t.Fatalf("startLocal = %v, %v; want ErrBootFailed", n, err)
			}
			t.Logf("startLocal error: %v", err)
			if got := errors.Is(err, errPortInUse); got != tt.wantPortErr {
				t.Errorf("errors.Is(err, errPortInUse) = %v, want %v (err: %v)", got, tt.wantPortErr, err)
			}
			data, _ := os.ReadFile(attempts)
			if got := strings.Count(string(data), "attempt"); got != tt.wantAttempts {
				t.Errorf("rabbitmq-server started %d times, want %d", got, tt.wantAttempts)
			}
			left, _ := os.ReadDir(tmp)
			if len(left) != 0 {
				t.Errorf("node directory left behind: %v", left)
			}
		})
	}
}

func TestFindScripts(t *testing.T) {
	real, _ := fakeScripts(t, "exit 0")
	wrapperDir := t.TempDir() // like /usr/sbin: wrappers without rabbitmq-env
	for _, name := range []string{"rabbitmq-server", "rabbitmqctl"} {
		if err := os.WriteFile(filepath.Join(wrapperDir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	linkDir := t.TempDir() // like Homebrew: a symlink into the scripts dir
	if err := os.Symlink(filepath.Join(real, "rabbitmq-server"), filepath.Join(linkDir, "rabbitmq-server")); err != nil {
		t.Fatal(err)
	}
	saved := knownScriptsDirs
	t.Cleanup(func() { knownScriptsDirs = saved })

	tests := []struct {
		name    string
		inPath  string // directory lookPath finds rabbitmq-server in; "" for none
		known   []string
		wantDir string
	}{
		{"symlink in PATH is followed", linkDir, nil, real},
		{"sudo wrapper in PATH is skipped for the known dir", wrapperDir, []string{real}, real},
		{"only a wrapper", wrapperDir, nil, ""},
		{"nothing", "", []string{t.TempDir()}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			knownScriptsDirs = tt.known
			lookPath := func(name string) (string, error) {
				if tt.inPath == "" {
					return "", errors.New("not found")
				}
				p := filepath.Join(tt.inPath, name)
				if _, err := os.Stat(p); err != nil {
					return "", err
				}
				return p, nil
			}
			dir, why := findScripts(lookPath)
			wantDir, _ := filepath.EvalSymlinks(tt.wantDir)
			if tt.wantDir == "" {
				wantDir = ""
			}
			if dir != wantDir {
				t.Errorf("findScripts() = %q, want %q", dir, wantDir)
			}
			if dir == "" && !strings.Contains(why, "no rabbitmq-server") {
				t.Errorf("why = %q", why)
			}
		})
	}
}

// dialNamed opens a connection to url with a connection_name and closes it
// when the test ends.
func dialNamed(t *testing.T, url, name string) (*amqp.Connection, chan *amqp.Error) {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{
		Properties: amqp.Table{"connection_name": name},
		Dial:       amqp.DefaultDial(shortTestTimeout),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", redact(url), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, conn.NotifyClose(make(chan *amqp.Error, 1))
}

// awaitClose waits for a NotifyClose delivery and checks its code.
func awaitClose(t *testing.T, ch <-chan *amqp.Error, wantCodes ...int) {
	t.Helper()
	timer := time.NewTimer(shortTestTimeout)
	defer timer.Stop()
	select {
	case e := <-ch:
		if e == nil || !slices.Contains(wantCodes, e.Code) {
			t.Errorf("connection closed with %v, want code in %v", e, wantCodes)
		}
	case <-timer.C:
		t.Fatalf("connection not closed within %v", shortTestTimeout)
	}
}

func TestCloseUserAndAllConnections(t *testing.T) {
	b := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	const user, pass = "close-user", "pw"
	if err := b.Faults.AddUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	defer b.Faults.DeleteUser(context.WithoutCancel(ctx), user)
	if err := b.Faults.SetPermissions(ctx, "/", user); err != nil {
		t.Fatal(err)
	}
	_, userClosed := dialNamed(t, b.URLWith(user, pass, "/"), "close-user-1")
	_, guestClosed := dialNamed(t, b.URL, "close-guest-1")

	if err := b.Faults.CloseUserConnections(ctx, user); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, userClosed, amqp.ConnectionForced)
	select {
	case e := <-guestClosed:
		t.Fatalf("guest's connection closed too: %v", e)
	default:
	}
	if err := b.Faults.CloseAllConnections(ctx); err != nil {
		t.Fatal(err)
	}
	awaitClose(t, guestClosed, amqp.ConnectionForced)
}

func TestEval(t *testing.T) {
	b := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	got, err := b.Faults.Eval(ctx, "1 + 41.")
	if err != nil {
		t.Fatal(err)
	}
	if got != "42" {
		t.Errorf("Eval(1 + 41.) = %q, want 42", got)
	}
	if _, err := b.Faults.Eval(ctx, "syntax error("); err == nil {
		t.Error("Eval of a syntax error succeeded")
	}
}

func TestStopStartApp(t *testing.T) {
	b := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	_, closed := dialNamed(t, b.URL, "stop-app")
	if err := b.Faults.StopApp(ctx); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, leave the broker running for other tests.
	t.Cleanup(func() {
		if err := b.Faults.StartApp(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("StartApp in cleanup: %v", err)
		}
	})
	// stop_app sends 320 and closes the socket; when the client writes in
	// between (its close-ok), the kernel answers with a reset and amqp091-go
	// may report that 501 first. Either way the fault closed the connection.
	awaitClose(t, closed, amqp.ConnectionForced, amqp.FrameError)
	if c, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(shortTestTimeout)}); err == nil {
		c.Close()
		t.Fatal("dial succeeded while the app was stopped")
	}
	if err := b.Faults.StartApp(ctx); err != nil {
		t.Fatal(err)
	}
	// StartApp returns once AMQP is accepted again: no retry needed.
	dialNamed(t, b.URL, "after-start-app")
}

func TestRestart(t *testing.T) {
	b := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*defaultTestTimeout)
	defer cancel()
	if b.Source != SourceLocal {
		if err := b.Faults.Restart(ctx); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Restart on a %s broker = %v, want ErrUnsupported", b.Source, err)
		}
		return
	}
	const vhost = "survives-restart"
	if err := b.Faults.AddVhost(ctx, vhost); err != nil {
		t.Fatal(err)
	}
	defer b.Faults.DeleteVhost(context.WithoutCancel(ctx), vhost)
	if err := b.Faults.SetPermissions(ctx, vhost, "guest"); err != nil {
		t.Fatal(err)
	}
	_, closed := dialNamed(t, b.URL, "restart")

	start := time.Now()
	if err := b.Faults.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart took %v", time.Since(start).Round(time.Millisecond))
	select {
	case e := <-closed:
		t.Logf("connection closed by restart: %v", e)
	default:
		t.Error("connection still open after Restart")
	}
	// Same URL, same data directory: the vhost is still there.
	dialNamed(t, b.URLWith("guest", "guest", vhost), "after-restart")
}
