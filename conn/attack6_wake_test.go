package conn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AddHook from many goroutines while blocked/unblocked notifications keep
// waking the loop: a lost wake leaves an AddHook waiting until its ctx ends
// on a Ready connection.
func TestAttack6AddHookWakesUnderChurn(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		on := false
		for {
			select {
			case <-stop:
				if on {
					attack6BlockedBurstNoFail(fc, false)
				}
				return
			default:
			}
			on = !on
			attack6BlockedBurstNoFail(fc, on)
			time.Sleep(time.Duration(50+time.Now().UnixNano()%200) * time.Microsecond)
		}
	}()
	var ups atomic.Int64
	var fails atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				start := time.Now()
				rm, err := s.AddHook(ctx, Hook{Name: fmt.Sprintf("g%d.%d", g, i),
					Up: func(context.Context, *amqp.Connection) error { ups.Add(1); return nil }})
				cancel()
				if err != nil {
					fails.Add(1)
					t.Errorf("AddHook g%d.%d after %v on a Ready connection: %v (state %v)", g, i, time.Since(start), err, s.State())
					return
				}
				if i%2 == 0 {
					rm()
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	if s.Stats().Connections != 1 {
		t.Logf("note: %d connections", s.Stats().Connections)
	}
}
