package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

// benchAdmin creates the contenders' users and kills their connections from
// the broker side (320 CONNECTION_FORCED).
type benchAdmin interface {
	addUser(ctx context.Context, user, pass string) error // with full permissions on "/"
	deleteUser(ctx context.Context, user string) error
	closeUser(ctx context.Context, user string) error
	route() string
	release()
}

// newBenchAdmin prefers the management API: one HTTP request closes a
// user's connections in milliseconds, where rabbitmqctl boots an Erlang VM
// for every call (0.6 to 1 s), too slow for a kill every 700 ms.
func newBenchAdmin(b *broker.Broker) (benchAdmin, error) {
	if b.MgmtURL == "" {
		return benchFaultsAdmin{b.Faults}, nil
	}
	return newBenchMgmtAdmin(b.MgmtURL)
}

// benchFaultsAdmin goes through the harness's fault tools (rabbitmqctl, or the
// management API when that is all there is).
type benchFaultsAdmin struct{ f broker.Faults }

func (a benchFaultsAdmin) addUser(ctx context.Context, user, pass string) error {
	if err := a.f.AddUser(ctx, user, pass); err != nil {
		return err
	}
	return a.f.SetPermissions(ctx, "/", user)
}

func (a benchFaultsAdmin) deleteUser(ctx context.Context, user string) error {
	return a.f.DeleteUser(ctx, user)
}

func (a benchFaultsAdmin) closeUser(ctx context.Context, user string) error {
	return a.f.CloseUserConnections(ctx, user)
}

func (a benchFaultsAdmin) route() string { return "harness fault tools (rabbitmqctl)" }
func (a benchFaultsAdmin) release()      {}

// benchMgmtTimeout bounds one management API request.
const benchMgmtTimeout = 10 * time.Second

// benchKillReason is the text the broker sends with 320 CONNECTION_FORCED.
const benchKillReason = "warren bench: forced close"

// benchMgmtAdmin talks to the RabbitMQ management HTTP API.
type benchMgmtAdmin struct {
	base       string // scheme://host:port[/path], no credentials, no trailing slash
	user, pass string
	tr         *http.Transport
	hc         *http.Client
}

func newBenchMgmtAdmin(rawURL string) (*benchMgmtAdmin, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bench: management URL: %v", err)
	}
	a := &benchMgmtAdmin{
		base: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"),
		user: "guest", pass: "guest",
		tr: http.DefaultTransport.(*http.Transport).Clone(),
	}
	if u.User != nil {
		a.user = u.User.Username()
		a.pass, _ = u.User.Password()
	}
	a.hc = &http.Client{Transport: a.tr, Timeout: benchMgmtTimeout}
	return a, nil
}

func (a *benchMgmtAdmin) do(ctx context.Context, method, path string, body any, header http.Header, okStatus ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: management API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	for _, s := range okStatus {
		if resp.StatusCode == s {
			return nil
		}
	}
	return fmt.Errorf("bench: management API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
}

func (a *benchMgmtAdmin) addUser(ctx context.Context, user, pass string) error {
	u := "/api/users/" + url.PathEscape(user)
	if err := a.do(ctx, http.MethodPut, u, map[string]string{"password": pass, "tags": ""}, nil); err != nil {
		return err
	}
	perms := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	return a.do(ctx, http.MethodPut, "/api/permissions/%2F/"+url.PathEscape(user), perms, nil)
}

func (a *benchMgmtAdmin) deleteUser(ctx context.Context, user string) error {
	return a.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user), nil, nil, http.StatusNotFound)
}

// closeUser closes every connection of user; a user with none is not an
// error (a kill that lands while the contender is reconnecting).
func (a *benchMgmtAdmin) closeUser(ctx context.Context, user string) error {
	h := http.Header{"X-Reason": {benchKillReason}}
	return a.do(ctx, http.MethodDelete, "/api/connections/username/"+url.PathEscape(user), nil, h, http.StatusNotFound)
}

func (a *benchMgmtAdmin) route() string { return "management API" }

func (a *benchMgmtAdmin) release() { a.tr.CloseIdleConnections() }
