package broker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// mgmtRecorder is a fake management API that records requests.
type mgmtRecorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD escaped-path body"
}

func (m *mgmtRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	line := r.Method + " " + r.URL.EscapedPath()
	if len(body) > 0 {
		line += " " + string(body)
	}
	if reason := r.Header.Get("X-Reason"); reason != "" {
		line += " reason=" + reason
	}
	m.reqs = append(m.reqs, line)
	m.mu.Unlock()
	if user, pass, ok := r.BasicAuth(); !ok || user != "admin" || pass != "pw" {
		http.Error(w, "unauthorised", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/api/connections" {
		_, _ = io.WriteString(w, `[
{"name":"127.0.0.1:1 -> 127.0.0.1:5672","user":"guest","vhost":"/","peer_port":1,"state":"running","client_properties":{"connection_name":"a"}},
{"name":"127.0.0.1:2 -> 127.0.0.1:5672","user":"bob","vhost":"v","peer_port":2,"state":"blocked","client_properties":{"product":"x"}}]`)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *mgmtRecorder) requests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.reqs...)
}

func TestMgmtRequests(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func(c *mgmtClient) error
		want []string
	}{
		{"add user", func(c *mgmtClient) error { return c.addUser(ctx, "a b", "pw") },
			[]string{`PUT /api/users/a%20b {"password":"pw","tags":""}`}},
		{"delete user", func(c *mgmtClient) error { return c.deleteUser(ctx, "bob") },
			[]string{"DELETE /api/users/bob"}},
		{"default vhost is escaped", func(c *mgmtClient) error { return c.setPermissions(ctx, "/", "bob") },
			[]string{`PUT /api/permissions/%2F/bob {"configure":".*","read":".*","write":".*"}`}},
		{"add vhost", func(c *mgmtClient) error { return c.addVhost(ctx, "v/1") },
			[]string{"PUT /api/vhosts/v%2F1"}},
		{"delete vhost", func(c *mgmtClient) error { return c.deleteVhost(ctx, "v") },
			[]string{"DELETE /api/vhosts/v"}},
		{"close by client name", func(c *mgmtClient) error {
			n, err := c.closeConnection(ctx, "a")
			if err == nil && n != 1 {
				t.Errorf("closed %d, want 1", n)
			}
			return err
		}, []string{"GET /api/connections", "DELETE /api/connections/127.0.0.1:1%20-%3E%20127.0.0.1:5672 reason=" + forcedCloseReason}},
		{"close user's", func(c *mgmtClient) error { return c.closeUserConnections(ctx, "bob") },
			[]string{"DELETE /api/connections/username/bob reason=" + forcedCloseReason}},
		{"close all", func(c *mgmtClient) error { return c.closeAllConnections(ctx) },
			[]string{"GET /api/connections",
				"DELETE /api/connections/127.0.0.1:1%20-%3E%20127.0.0.1:5672 reason=" + forcedCloseReason,
				"DELETE /api/connections/127.0.0.1:2%20-%3E%20127.0.0.1:5672 reason=" + forcedCloseReason}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &mgmtRecorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			c, err := newMgmtClient(strings.Replace(srv.URL, "http://", "http://admin:pw@", 1)+"/", "", "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.closeIdle()
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if got := rec.requests(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("requests =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestMgmtListConnections(t *testing.T) {
	srv := httptest.NewServer(&mgmtRecorder{})
	defer srv.Close()
	// Credentials missing from the URL come from the fallback.
	c, err := newMgmtClient(srv.URL, "admin", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeIdle()
	got, err := c.listConnections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Connection{
		{Name: "a", User: "guest", Vhost: "/", PeerPort: 1, State: "running"},
		{Name: "", User: "bob", Vhost: "v", PeerPort: 2, State: "blocked"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listConnections = %+v, want %+v", got, want)
	}
}

func TestMgmtErrors(t *testing.T) {
	srv := httptest.NewServer(&mgmtRecorder{})
	defer srv.Close()
	c, err := newMgmtClient(srv.URL, "admin", "wrong")
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeIdle()
	err = c.deleteUser(context.Background(), "bob")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("deleteUser with bad credentials = %v, want a 401 error", err)
	}
	for _, bad := range []string{"amqp://h:5672/", "://", "http://"} {
		if _, err := newMgmtClient(bad, "", ""); err == nil {
			t.Errorf("newMgmtClient(%q) succeeded", bad)
		}
	}
}

// TestMgmtAgainstBroker drives the management client against the shared
// node's real API (TestMain enables the plugin on nodes it starts).
func TestMgmtAgainstBroker(t *testing.T) {
	b := Shared(t)
	if b.MgmtURL == "" {
		t.Fatalf("broker from %s has no management API; with AMQP_URL, set AMQP_MGMT_URL too", b.Source)
	}
	c, err := newMgmtClient(b.MgmtURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeIdle()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	const user, pass, vhost = "mgmt-user", "mgmt pw/?", "mgmt vhost/1"
	for _, step := range []func() error{
		func() error { return c.addUser(ctx, user, pass) },
		func() error { return c.addVhost(ctx, vhost) },
		func() error { return c.setPermissions(ctx, vhost, user) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
		defer cancel()
		_ = c.deleteVhost(ctx, vhost)
		_ = c.deleteUser(ctx, user)
	})

	conn, err := amqp.DialConfig(b.URLWith(user, pass, vhost), amqp.Config{
		Properties: amqp.Table{"connection_name": "mgmt-test"},
	})
	if err != nil {
		t.Fatalf("dial as the new user: %v", err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	// The API lists connections from statistics emitted every second on
	// this node, so wait for the new one to appear.
	var n int
	for n == 0 && ctx.Err() == nil {
		if n, err = c.closeConnection(ctx, "mgmt-test"); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if n != 1 {
		t.Fatalf("closed %d connections named mgmt-test, want 1 (%v)", n, ctx.Err())
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("close = %v, want 320 CONNECTION_FORCED", e)
		}
	case <-ctx.Done():
		t.Fatal("connection not closed after DELETE /api/connections")
	}

	if err := c.deleteUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := c.deleteUser(ctx, user); err == nil {
		t.Error("deleting a deleted user succeeded")
	}
	if err := c.deleteVhost(ctx, "no-such-vhost"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("deleting a missing vhost = %v, want 404", err)
	}
}
