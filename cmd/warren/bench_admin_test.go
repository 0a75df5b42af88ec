package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMgmtAdmin(t *testing.T) {
	type call struct{ method, path, reason, auth, body string }
	var (
		mu    sync.Mutex
		calls []call
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		calls = append(calls, call{r.Method, r.URL.EscapedPath(), r.Header.Get("X-Reason"), user + ":" + pass, string(body)})
		mu.Unlock()
		switch {
		case strings.Contains(r.URL.Path, "nobody"):
			http.NotFound(w, r)
		case strings.Contains(r.URL.Path, "broken"):
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	a, err := newBenchMgmtAdmin(strings.Replace(srv.URL, "http://", "http://admin:secret@", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		do      func() error
		wantErr bool
		want    []call
	}{
		{"add user", func() error { return a.addUser(ctx, "warren-bench-x", "pw") }, false, []call{
			{"PUT", "/api/users/warren-bench-x", "", "admin:secret", `{"password":"pw","tags":""}`},
			{"PUT", "/api/permissions/%2F/warren-bench-x", "", "admin:secret", `{"configure":".*","read":".*","write":".*"}`},
		}},
		{"kill", func() error { return a.closeUser(ctx, "warren-bench-x") }, false, []call{
			{"DELETE", "/api/connections/username/warren-bench-x", benchKillReason, "admin:secret", ""},
		}},
		{"kill with no connection", func() error { return a.closeUser(ctx, "nobody") }, false, []call{
			{"DELETE", "/api/connections/username/nobody", benchKillReason, "admin:secret", ""},
		}},
		{"delete missing user", func() error { return a.deleteUser(ctx, "nobody") }, false, []call{
			{"DELETE", "/api/users/nobody", "", "admin:secret", ""},
		}},
		{"server error", func() error { return a.closeUser(ctx, "broken") }, true, []call{
			{"DELETE", "/api/connections/username/broken", benchKillReason, "admin:secret", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			calls = nil
			mu.Unlock()
			err := tt.do()
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error %v", err, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != len(tt.want) {
				t.Fatalf("calls %+v, want %+v", calls, tt.want)
			}
			for i := range calls {
				if calls[i] != tt.want[i] {
					t.Errorf("call %d = %+v, want %+v", i, calls[i], tt.want[i])
				}
			}
		})
	}
}
