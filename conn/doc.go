// Package conn is warren's connection supervisor over amqp091-go.
//
// A service creates one Supervisor from an Options struct and stops thinking
// about dead sockets. The Supervisor owns the AMQP connection on a single
// goroutine and:
//
//   - dials the URLs in turn through a heartbeat.Monitor, so a silent peer is
//     detected at Options.DeadPeerLimit and its socket closed at once;
//   - reconnects with capped exponential backoff and jitter
//     (reconnect.Policy): the first redial after a loss is immediate, later
//     ones back off, and a flapping broker does not reset the schedule;
//   - stops with a clear error on permanent failures (bad credentials,
//     unknown vhost, TLS verification) instead of retrying forever;
//   - re-runs ready hooks on every new connection before it reports Ready:
//     a declared Topology first (server-named queues get a fresh name that
//     bindings and consumers follow), then Consumers (which also resubscribe
//     after a broker-side cancel or consumer_timeout), then Publishers (which
//     re-enable confirm mode before accepting any publish and republish what
//     the old connection never confirmed);
//   - delivers Events in order on one dispatcher goroutine from a bounded
//     buffer that drops the oldest event rather than block, and reports user
//     callbacks that stall, with their stack;
//   - tracks the broker's connection.blocked flag and, optionally, redials a
//     connection blocked too long;
//   - closes within the caller's context: Close is idempotent, runs every
//     teardown step, and leaves no goroutine behind.
//
// Credentials never appear in logs, events or errors: every URL is shown as
// amqp://user:***@host:port/vhost.
//
// # Usage
//
//	sup, err := conn.New(conn.Options{
//		URLs:           []string{"amqp://app:secret@rabbit-1:5672/", "amqp://app:secret@rabbit-2:5672/"},
//		ConnectionName: "orders-service",
//		OnEvent:        func(e conn.Event) { log.Printf("warren: %s %s %v", e.Kind, e.State, e.Err) },
//	})
//	if err != nil {
//		return err // invalid options: nothing was started
//	}
//	defer func() {
//		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//		defer cancel()
//		_ = sup.Close(ctx)
//	}()
//	if err := sup.WaitReady(ctx); err != nil {
//		return err // ctx ended, or a permanent error (sup.Err()) stopped it
//	}
package conn
