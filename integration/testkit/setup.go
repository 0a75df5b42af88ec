package testkit

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/reconnect"
)

// FastPolicy recovers quickly in tests; ResetAfter is short so that every
// loss of a healthy connection earns an immediate redial.
func FastPolicy() reconnect.Policy {
	return reconnect.Policy{Initial: 50 * time.Millisecond, Max: time.Second, ResetAfter: 200 * time.Millisecond}
}

var userSeq atomic.Int64

// TestUser creates a user with full permissions on "/" through the broker's
// fault tools, so the test can find and kill exactly its own connections; it
// is deleted at cleanup. Each fault call is bounded by timeout.
func TestUser(t testing.TB, b *broker.Broker, timeout time.Duration) (user, pass string) {
	t.Helper()
	user = fmt.Sprintf("warren-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), userSeq.Add(1))
	pass = "pw-" + user
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := b.Faults.AddUser(ctx, user, pass); err != nil {
		t.Fatalf("add user: %v", err)
	}
	if err := b.Faults.SetPermissions(ctx, "/", user); err != nil {
		t.Fatalf("set permissions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = b.Faults.DeleteUser(ctx, user)
	})
	return user, pass
}
