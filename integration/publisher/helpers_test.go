package publisher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/integration/testkit"
	"github.com/warrenmq/warren/reconnect"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
	// closeTimeout bounds closing a supervisor or a raw connection at cleanup.
	closeTimeout = 10 * time.Second
)

var userSeq atomic.Int64

// testUser creates a user with full permissions on "/" so the test can kill
// exactly its own connections; it is deleted at cleanup. It goes through the
// management API, which answers in milliseconds where rabbitmqctl takes a
// second per call.
func testUser(t testing.TB, b *broker.Broker) (user, pass string) {
	t.Helper()
	m := newMgmt(t, b)
	user = fmt.Sprintf("warren-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), userSeq.Add(1))
	pass = "pw-" + user
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	if err := m.send(ctx, http.MethodPut, "/api/users/"+url.PathEscape(user),
		map[string]string{"password": pass, "tags": ""}); err != nil {
		t.Fatalf("add user: %v", err)
	}
	if err := m.send(ctx, http.MethodPut, "/api/permissions/%2F/"+url.PathEscape(user),
		map[string]string{"configure": ".*", "write": ".*", "read": ".*"}); err != nil {
		t.Fatalf("set permissions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		_ = m.send(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user), nil)
	})
	return user, pass
}

// start creates a supervisor, waits until it is Ready, and closes it at
// cleanup.
func start(t testing.TB, opts conn.Options) *conn.Supervisor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	if opts.Reconnect == (reconnect.Policy{}) {
		opts.Reconnect = fastPolicy()
	}
	s, err := conn.New(opts)
	if err != nil {
		t.Fatalf("conn.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		// Tests that leave messages unconfirmed check that report themselves.
		if err := s.Close(ctx); err != nil && !errors.Is(err, conn.ErrUnconfirmed) {
			t.Errorf("Close at cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v (last error %v)", err, s.Err())
	}
	return s
}

// newPublisher creates a publisher on s.
func newPublisher(t testing.TB, s *conn.Supervisor, opts conn.PublisherOptions) *conn.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	p, err := s.NewPublisher(ctx, opts)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rawConn dials the broker as its administrator with plain amqp091-go: the
// side that is never killed. It is closed at cleanup.
func rawConn(t testing.TB, b *broker.Broker) *amqp.Connection {
	t.Helper()
	c, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(defaultTestTimeout)})
	if err != nil {
		t.Fatalf("dial %s: %v", b.Addr(), err)
	}
	t.Cleanup(func() { _ = c.CloseDeadline(time.Now().Add(closeTimeout)) })
	return c
}

// declareQueue declares a fresh durable queue with args on the raw
// connection and deletes it at cleanup.
func declareQueue(t testing.TB, c *amqp.Connection, args amqp.Table) string {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	name := fmt.Sprintf("warren-pub-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), userSeq.Add(1))
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	t.Cleanup(func() {
		ch, err := c.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(name, false, false, false)
		_ = ch.Close()
	})
	return name
}

// counter consumes a queue on the raw connection and counts message ids
// (or what countQueueBy's key says).
type counter struct {
	mu         sync.Mutex
	seen       map[string]int
	deliveries int
	wake       chan struct{}
	done       chan struct{}
}

func countQueue(t testing.TB, c *amqp.Connection, queue string) *counter {
	t.Helper()
	return countQueueBy(t, c, queue, func(d amqp.Delivery) string { return d.MessageId })
}

// countQueueBy is countQueue counting what key says of each delivery.
func countQueueBy(t testing.TB, c *amqp.Connection, queue string, key func(amqp.Delivery) string) *counter {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	k := &counter{seen: map[string]int{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for d := range deliveries {
			_ = d.Ack(false)
			k.mu.Lock()
			k.seen[key(d)]++
			k.deliveries++
			k.mu.Unlock()
			select {
			case k.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = ch.Close()
		<-k.done
	})
	return k
}

func (k *counter) has(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seen[id] > 0
}

func (k *counter) counts() (unique, deliveries int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.seen), k.deliveries
}

// waitAll waits until every id in ids has been received, or until nothing
// new has arrived for quiet; it returns the ids still missing.
func (k *counter) waitAll(ids []string, quiet time.Duration) []string {
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		var missing []string
		for _, id := range ids {
			if !k.has(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-k.wake:
			if !timer.Stop() {
				<-timer.C
			}
			timer.Reset(quiet)
		case <-timer.C:
			return missing
		}
	}
}

// mgmt talks to the broker's management API with a transport of its own, so
// no keep-alive goroutine outlives the test.
type mgmt struct {
	base       string
	user, pass string
	tr         *http.Transport
	hc         *http.Client
}

func newMgmt(t testing.TB, b *broker.Broker) *mgmt {
	t.Helper()
	if b.MgmtURL == "" {
		t.Fatal("the broker has no management API; TestMain must ask for one")
	}
	u, err := url.Parse(b.MgmtURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	tr := &http.Transport{}
	m := &mgmt{
		base: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"),
		user: u.User.Username(), pass: pass,
		tr: tr, hc: &http.Client{Transport: tr, Timeout: faultTimeout},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return m
}

func (m *mgmt) do(ctx context.Context, method, path string) (*http.Response, error) {
	return m.doBody(ctx, method, path, nil)
}

func (m *mgmt) doBody(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(m.user, m.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	return resp, nil
}

// send makes a request whose answer is only its status.
func (m *mgmt) send(ctx context.Context, method, path string, body any) error {
	resp, err := m.doBody(ctx, method, path, body)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// killUser makes the broker close every connection of user (320
// CONNECTION_FORCED). The broker finds them through its connection
// tracking, not the statistics, so a connection opened just now is closed too.
func (m *mgmt) killUser(ctx context.Context, user string) error {
	return m.send(ctx, http.MethodDelete, "/api/connections/username/"+url.PathEscape(user), nil)
}

func newProxy(t testing.TB, b *broker.Broker) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func persistent(id string, body []byte) amqp.Publishing {
	return amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent, Body: body}
}

// Shared test setup (see testkit).
var (
	fastPolicy  = testkit.FastPolicy
	quietLogger = testkit.QuietLogger
)
