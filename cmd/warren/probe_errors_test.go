package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

// probeRun runs warren with args and returns the exit code and everything
// it printed.
func probeRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	exit := run(args, &out, &errOut)
	t.Logf("warren %s: exit %d\n%s%s", strings.Join(args, " "), exit, out.String(), errOut.String())
	return exit, out.String(), errOut.String()
}

func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range []string{"probe", "bench", "demo"} {
		for _, flag := range []string{"-h", "-help", "--help"} {
			t.Run(cmd+flag, func(t *testing.T) {
				exit, out, errOut := probeRun(t, cmd, flag)
				if exit != 0 {
					t.Errorf("exit %d, want 0", exit)
				}
				if !strings.Contains(out+errOut, "usage: warren "+cmd) {
					t.Errorf("help does not show the usage line")
				}
			})
		}
	}
}

func TestProbeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no URL", []string{"probe"}},
		{"two URLs", []string{"probe", "amqp://a/", "amqp://b/"}},
		{"unknown flag", []string{"probe", "-jsn", "amqp://a/"}},
		{"bad timeout", []string{"probe", "-timeout", "soon", "amqp://a/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exit, _, errOut := probeRun(t, tt.args...)
			if exit != exitUsage {
				t.Errorf("exit %d, want %d (usage)", exit, exitUsage)
			}
			if errOut == "" {
				t.Errorf("nothing on stderr")
			}
		})
	}
}

// TestProbeFlagsEitherSide: flags after the URL work as flags before it.
func TestProbeFlagsEitherSide(t *testing.T) {
	b := broker.Shared(t)
	for _, args := range [][]string{
		{"probe", "-json", b.URL, "-timeout", "20s"},
		{"probe", b.URL, "-json", "-timeout=20s"},
	} {
		exit, out, _ := probeRun(t, args...)
		if exit != exitHealthy {
			t.Errorf("%q: exit %d, want %d", args, exit, exitHealthy)
		}
		var r probeReport
		if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Healthy {
			t.Errorf("%q: not a healthy JSON report (%v)", args, err)
		}
	}
}

// TestProbeMalformedURLNeverShowsPassword: every shape of malformed URL with
// a password is reported as an invalid URL that names the mistake, and the
// password never appears.
func TestProbeMalformedURLNeverShowsPassword(t *testing.T) {
	const secret = "s3cret-Pw"
	tests := []struct{ url, want string }{
		{"amqp//guest:" + secret + "@127.0.0.1", `missing ":" after the scheme`},
		{"amqp:guest:" + secret + "@127.0.0.1", `missing "//" after the scheme`},
		{"guest:" + secret + "@127.0.0.1", "URL must start with amqp://"},
		{"http://guest:" + secret + "@127.0.0.1/", `scheme "http" is not amqp or amqps`},
		{"amqp://guest:12/" + secret + "@127.0.0.1/", `"@" after the host`},
		{"amqp://guest:" + secret + "/x@127.0.0.1/", "invalid port"},
		{"amqp://guest:" + secret + "%zz@127.0.0.1/", "invalid URL escape"},
		{"amqp://guest:" + secret + "@127.0.0.1:99999/", "port must be a number"},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			args := []string{"probe", "-timeout", "5s", tt.url}
			if asJSON {
				args = append(args, "-json")
			}
			exit, out, errOut := probeRun(t, args...)
			if exit != exitPermanent {
				t.Errorf("%q: exit %d, want %d", tt.url, exit, exitPermanent)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%q: output shows the password", tt.url)
			}
			if asJSON {
				var r probeReport
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatalf("-json output does not parse: %v", err)
				}
				out = r.Verdict
			}
			if !strings.Contains(out, "invalid URL: "+tt.want) {
				t.Errorf("%q: output does not say invalid URL: %s", tt.url, tt.want)
			}
			if strings.Contains(out, "unknown error") {
				t.Errorf("%q: output says unknown error", tt.url)
			}
		}
	}
}

// TestProbeSaysWhatFailed: failures read in operator words, not the
// probe's own policy, with the right class.
func TestProbeSaysWhatFailed(t *testing.T) {
	b := broker.Shared(t)
	plain, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	amqpsPlain := *plain
	amqpsPlain.Scheme = "amqps"

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "amqp://u:p4ssword@" + closed.Addr().String() + "/"
	closed.Close()

	tests := []struct {
		name     string
		url      string
		wantExit int
		want     []string
		bound    time.Duration
	}{
		{"closed port", closedURL, exitTransient,
			[]string{"connection refused", "nothing listens there"}, 5 * time.Second},
		{"amqps against the plain port", amqpsPlain.String(), exitPermanent,
			[]string{"did not answer in TLS", "amqps:// against a plain AMQP port"}, 5 * time.Second},
		{"HTTP server that answers", "amqp://u:p4ssword@" + fakeServer(t, answerHTTP) + "/", exitPermanent,
			[]string{"this port does not speak AMQP", "answered in HTTP"}, 5 * time.Second},
		{"HTTP server silent to AMQP, as the management port is", "amqp://u:p4ssword@" + fakeServer(t, answerHTTPRequests) + "/", exitPermanent,
			[]string{"this port does not speak AMQP", "answers HTTP requests"}, 8 * time.Second},
		{"server that waits silently", "amqp://u:p4ssword@" + fakeServer(t, waitSilently) + "/", exitTransient,
			[]string{"does not seem to speak AMQP", "no AMQP greeting"}, 8 * time.Second},
		{"TLS port probed with amqp://", "amqp://u:p4ssword@" + fakeServer(t, answerTLSAlert) + "/", exitPermanent,
			[]string{"answered in TLS; use amqps://"}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			exit, out, _ := probeRun(t, "probe", "-timeout", "15s", tt.url)
			if took := time.Since(begin); took > tt.bound {
				t.Errorf("took %v, want at most %v", took, tt.bound)
			}
			if exit != tt.wantExit {
				t.Errorf("exit %d, want %d", exit, tt.wantExit)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q", w)
				}
			}
			for _, internal := range []string{"gave up", "MaxAttempts", "unknown error", "p4ssword"} {
				if strings.Contains(out, internal) {
					t.Errorf("output shows %q", internal)
				}
			}
		})
	}
}

// TestProbeManagementPort probes a real RabbitMQ management port, which
// meets the AMQP header with 5 s of silence and then closes: the probe must
// say sooner that the port does not speak AMQP. It starts a node of its own
// with the management plugin (about 15 s), which only this test pays for.
func TestProbeManagementPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := broker.FindWith(ctx, t.Logf, broker.Options{Management: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Close(cctx); err != nil {
			t.Errorf("closing the management node: %v", err)
		}
	})
	if b.MgmtURL == "" {
		t.Skipf("broker from %s has no management URL", b.Source)
	}
	mgmt, err := url.Parse(b.MgmtURL)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	exit, out, _ := probeRun(t, "probe", "-timeout", "15s", "amqp://guest:guest@"+mgmt.Host+"/")
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("took %v; the management port's own timeout is 5s", took)
	}
	if exit != exitPermanent || !strings.Contains(out, "this port does not speak AMQP") {
		t.Errorf("exit %d, want %d and \"this port does not speak AMQP\"", exit, exitPermanent)
	}
}

// fakeServer serves every connection with serve until the test ends, and
// returns its address.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// answerHTTP answers any bytes as an HTTP server answers garbage.
func answerHTTP(c net.Conn) {
	_, _ = bufio.NewReader(c).Peek(1)
	_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"))
}

// waitSilently reads and says nothing, as an HTTP server waiting for the
// end of a request line, until the client goes.
func waitSilently(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// answerTLSAlert answers as a TLS server answers plain text: a fatal alert.
func answerTLSAlert(c net.Conn) {
	_, _ = bufio.NewReader(c).Peek(1)
	_, _ = c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46})
}

// answerHTTPRequests is RabbitMQ's management port as measured against
// 3.10.8: silent to the AMQP header (it waits for the end of a request line,
// then closes after 5 s without a byte), prompt to a real request.
func answerHTTPRequests(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))
			return
		}
	}
}
