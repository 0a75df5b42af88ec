package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/reconnect"
)

// Probe exit codes.
const (
	exitHealthy   = 0
	exitTransient = 1
	exitPermanent = 2
)

// probeReport is what warren probe finds out about a broker.
type probeReport struct {
	URL       string        `json:"url"` // redacted
	Healthy   bool          `json:"healthy"`
	Verdict   string        `json:"verdict"`
	Class     string        `json:"class,omitempty"` // of the failure: transient or permanent
	Error     string        `json:"error,omitempty"`
	Product   string        `json:"product,omitempty"`
	Version   string        `json:"version,omitempty"`
	Heartbeat time.Duration `json:"heartbeat_ns,omitempty"`
	FrameMax  int           `json:"frame_max,omitempty"`
	ChanMax   uint16        `json:"channel_max,omitempty"`
	TLS       *probeTLS     `json:"tls,omitempty"`
	Connect   time.Duration `json:"connect_ns,omitempty"`
	RoundTrip time.Duration `json:"publish_confirm_ns,omitempty"`
	exit      int
}

type probeTLS struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher_suite"`
	ServerName  string `json:"server_name"`
	PeerSubject string `json:"peer_subject,omitempty"`
	PeerExpires string `json:"peer_expires,omitempty"`
}

// probeHelp is what warren probe -h prints, before the flags.
const probeHelp = `
usage: warren probe [-json] [-timeout 10s] amqp://user:pass@host:port/vhost

Connects once to a broker the way a warren service would, publishes one
message to a temporary queue and waits for the broker's confirm. Flags may
come before or after the URL. The password is never printed.

Exit codes: 0 healthy; 1 transient failure (may recover: refused, timeout,
connection lost); 2 permanent failure (retrying will not help: credentials,
vhost, TLS certificate, a port that does not speak AMQP, an invalid URL);
64 a command line that cannot be run.

`

func probeMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole probe")
	urls, exit, ok := parseCommand(fs, args, probeHelp, stdout, stderr)
	if !ok {
		return exit
	}
	if len(urls) != 1 {
		fmt.Fprintf(stderr, "warren probe: want one URL, got %d\nusage: warren probe [-json] [-timeout 10s] amqp://user:pass@host:port/vhost\n", len(urls))
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "warren probe: -timeout must be positive, got %v\n", *timeout)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r := probe(ctx, urls[0])
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		r.print(stdout)
	}
	return r.exit
}

// probe connects once through a warren Supervisor that does not retry, so
// that the verdict uses the same dialing, dead-peer monitor and error classes
// as a service would, then times a publish→confirm round trip on a temporary
// queue.
func probe(ctx context.Context, rawURL string) *probeReport {
	r := &probeReport{URL: conn.RedactURL(rawURL)}
	begin := time.Now()
	sup, err := conn.New(conn.Options{
		URLs:           []string{rawURL},
		ConnectionName: "warren-probe",
		Reconnect:      reconnect.Policy{MaxAttempts: 1},
		DialTimeout:    timeoutOf(ctx),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return r.fail(err, exitCode(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = sup.Close(cctx)
	}()
	// The hook sees the amqp091-go connection itself: negotiated parameters
	// and TLS state are not part of the Supervisor's API.
	if _, err := sup.AddHook(ctx, conn.Hook{Name: "probe", Up: func(_ context.Context, c *amqp.Connection) error {
		r.describe(c)
		return nil
	}}); err != nil {
		return r.fail(err, exitTransient)
	}
	if err := waitReady(ctx, sup, rawURL); err != nil {
		return r.fail(err, exitCode(err))
	}
	r.Connect = time.Since(begin)
	rtt, err := publishRoundTrip(ctx, sup)
	if err != nil {
		return r.fail(fmt.Errorf("publish round trip: %w", err), exitCode(err))
	}
	r.RoundTrip = rtt
	r.Healthy = true
	r.Verdict = "healthy: connected, published and got a confirm"
	return r
}

// publishRoundTrip declares a server-named exclusive queue, publishes one
// message to it in confirm mode, and times publish to ack.
func publishRoundTrip(ctx context.Context, sup *conn.Supervisor) (time.Duration, error) {
	ch, err := sup.Channel(ctx)
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return 0, fmt.Errorf("declare temporary queue: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return 0, fmt.Errorf("confirm mode: %w", err)
	}
	start := time.Now()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, true, false,
		amqp.Publishing{Body: []byte("warren probe"), DeliveryMode: amqp.Transient})
	if err != nil {
		return 0, err
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return 0, err
	}
	if !acked {
		return 0, errors.New("broker nacked the probe message")
	}
	return time.Since(start), nil
}

func (r *probeReport) describe(c *amqp.Connection) {
	if p, ok := c.Properties["product"].(string); ok {
		r.Product = p
	}
	if v, ok := c.Properties["version"].(string); ok {
		r.Version = v
	}
	r.Heartbeat = c.Config.Heartbeat
	r.FrameMax = c.Config.FrameSize
	r.ChanMax = c.Config.ChannelMax
	if st := c.ConnectionState(); st.HandshakeComplete {
		t := &probeTLS{
			Version:     tls.VersionName(st.Version),
			CipherSuite: tls.CipherSuiteName(st.CipherSuite),
			ServerName:  st.ServerName,
		}
		if len(st.PeerCertificates) > 0 {
			t.PeerSubject = st.PeerCertificates[0].Subject.String()
			t.PeerExpires = st.PeerCertificates[0].NotAfter.UTC().Format(time.RFC3339)
		}
		r.TLS = t
	}
}

// fail records err, in the operator's words, as the probe's verdict.
func (r *probeReport) fail(err error, exit int) *probeReport {
	err = probeCause(err)
	r.exit = exit
	r.Error = err.Error() // warren's errors carry redacted URLs only
	switch exit {
	case exitPermanent:
		r.Class = "permanent"
		r.Verdict = "unhealthy: " + operatorWords(err) + " (permanent: retrying will not help)"
	default:
		r.Class = "transient"
		r.Verdict = "unhealthy: " + operatorWords(err) + " (transient: may recover)"
	}
	return r
}

// exitCode says whether err is worth probing again later.
func exitCode(err error) int {
	switch {
	case errors.Is(err, conn.ErrInvalidOptions), errors.Is(err, errNotAMQP):
		return exitPermanent
	case errors.Is(err, errNoGreeting):
		return exitTransient
	case reconnect.IsPermanent(err):
		return exitPermanent
	}
	return exitTransient
}

// waitReady waits for the supervisor's first connection, and finds out what
// the port speaks when that takes longer than greetWait or fails the way a
// port that is not AMQP fails, so that the management port is reported in a
// few seconds as such instead of as "connection lost (501)" when the probe's
// timeout ends.
func waitReady(ctx context.Context, sup *conn.Supervisor, rawURL string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- sup.WaitReady(wctx) }()
	failure := func(err error) error {
		if cause := sup.Err(); cause != nil {
			err = cause
		}
		return err
	}
	timer := time.NewTimer(greetWait)
	defer timer.Stop()
	select {
	case err := <-ready:
		if err == nil {
			return nil
		}
		err = failure(err)
		if _, reason := reconnect.Classify(err); strings.Contains(reason, "(50") || strings.Contains(reason, "EOF") {
			if serr := sniff(ctx, rawURL); serr != nil {
				return serr
			}
		}
		return err
	case <-timer.C:
	}
	if serr := sniff(ctx, rawURL); serr != nil {
		cancel()
		<-ready
		return serr
	}
	if err := <-ready; err != nil {
		return failure(err)
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return conn.DefaultDialTimeout
}

func (r *probeReport) print(w io.Writer) {
	fmt.Fprintf(w, "broker:     %s\n", r.URL)
	if r.Product != "" {
		fmt.Fprintf(w, "server:     %s %s\n", r.Product, r.Version)
		fmt.Fprintf(w, "heartbeat:  %v (negotiated)\n", r.Heartbeat)
		fmt.Fprintf(w, "frame max:  %d bytes\n", r.FrameMax)
		fmt.Fprintf(w, "channels:   %d max\n", r.ChanMax)
	}
	if r.TLS != nil {
		fmt.Fprintf(w, "tls:        %s, %s, server name %q\n", r.TLS.Version, r.TLS.CipherSuite, r.TLS.ServerName)
		if r.TLS.PeerSubject != "" {
			fmt.Fprintf(w, "peer cert:  %s (expires %s)\n", r.TLS.PeerSubject, r.TLS.PeerExpires)
		}
	}
	if r.Connect > 0 {
		fmt.Fprintf(w, "connect:    %v\n", r.Connect.Round(time.Microsecond))
	}
	if r.RoundTrip > 0 {
		fmt.Fprintf(w, "confirm:    %v publish→ack round trip\n", r.RoundTrip.Round(time.Microsecond))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error:      %s\n", r.Error)
	}
	fmt.Fprintf(w, "verdict:    %s\n", r.Verdict)
}
