package conn

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/warrenmq/warren/heartbeat"
)

// owedDeath returns a Monitor that the replies-owed rule declared dead.
func owedDeath(t *testing.T, limit time.Duration) *heartbeat.Monitor {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { server.Close() })
	m, err := heartbeat.NewMonitor(client, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	m.SetOwedLimit(limit)
	m.Start()
	m.Owe()
	select {
	case <-m.Dead():
	case <-time.After(defaultTestTimeout):
		t.Fatal("no owed verdict")
	}
	return m
}

// TestOwedMemoryRaisesNextLimit: a connection lost to the owed rule raises
// the next connections' owed limit to OwedGapFactor x the owed time, capped
// by the silence limit, so a broker that holds its confirms on purpose
// cannot drive a reconnect loop.
func TestOwedMemoryRaisesNextLimit(t *testing.T) {
	const configured, silence = 50 * time.Millisecond, 2 * time.Second
	var o owedMemory
	if got := o.limit(configured, silence); got != configured {
		t.Fatalf("first limit = %v, want the configured %v", got, configured)
	}
	m := owedDeath(t, configured)
	o.track(m)
	got := o.limit(configured, silence)
	var dp *heartbeat.DeadPeerError
	if err := m.Err(); !errors.As(err, &dp) || got != dp.Owed*heartbeat.OwedGapFactor {
		t.Fatalf("limit after an owed verdict (%v) = %v, want %d x the owed time", m.Err(), got, heartbeat.OwedGapFactor)
	}
	// It stays raised for the connections after, not only the next one.
	if again := o.limit(configured, silence); again != got {
		t.Fatalf("limit for the connection after = %v, want it still raised to %v", again, got)
	}
	// Capped by the silence limit.
	o.track(owedDeath(t, 4*configured))
	if capped := o.limit(configured, 8*configured); capped != 8*configured {
		t.Fatalf("limit = %v, want the cap %v", capped, 8*configured)
	}
}

// TestOwedMemoryIgnoresPartitions: when the next dial succeeds only after
// the silence limit (the network was really down), the verdict was right and
// the limit stays as configured.
func TestOwedMemoryIgnoresPartitions(t *testing.T) {
	const configured, silence = 50 * time.Millisecond, 100 * time.Millisecond
	var o owedMemory
	o.track(owedDeath(t, configured))
	time.Sleep(2 * silence) // the dials fail meanwhile
	if got := o.limit(configured, silence); got != configured {
		t.Fatalf("limit after a partition = %v, want the configured %v", got, configured)
	}
}
