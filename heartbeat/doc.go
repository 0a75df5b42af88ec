// Package heartbeat holds warren's liveness mechanisms: a Monitor that detects
// a silent peer on the raw network connection, and a Watchdog that reports
// user callbacks that run too long.
//
// # Dead-peer detection
//
// amqp091-go declares the broker dead only after 1.5 heartbeats without a
// byte, and not at all when heartbeats are disabled. A Monitor wraps the
// net.Conn that amqp091-go dials and closes it once nothing has been read for
// the configured limit, so that amqp091-go fails at once and the supervisor
// reconnects. Each Read and Write stores a timestamp in an atomic; one timer
// re-arms from the last read, so a busy, healthy connection costs about one
// wakeup per limit, and a read that is a broker heartbeat frame pushes the
// timer forward itself, so on an idle one the timer does not run at all. CheckLimit validates a limit
// against the negotiated heartbeat, and RecommendedLimit gives one that a
// healthy broker never exceeds.
//
//	var mon *heartbeat.Monitor
//	cfg := amqp.Config{
//		Heartbeat: 2 * time.Second,
//		Dial: func(network, addr string) (net.Conn, error) {
//			c, err := net.DialTimeout(network, addr, 10*time.Second)
//			if err != nil {
//				return nil, err
//			}
//			// The handshake is bounded by this deadline; amqp091-go clears it.
//			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
//			mon, err = heartbeat.NewMonitor(c, heartbeat.RecommendedLimit(2*time.Second))
//			if err != nil {
//				c.Close()
//			}
//			return mon, err
//		},
//	}
//	conn, err := amqp.DialConfig(url, cfg)
//	if err != nil { ... }
//	mon.Start() // heartbeats are negotiated now
//	select {
//	case <-mon.Dead(): // mon.Err() says how long the broker was silent
//	case <-conn.NotifyClose(make(chan *amqp.Error, 1)):
//	}
//
// # Replies owed
//
// Under load, silence is weak evidence: it must allow for the broker's idle
// cadence. A caller that writes a request the broker must answer (a publish
// on a confirm-mode channel) calls Owe just before the write; with
// SetOwedLimit on, a reply owed with nothing at all read for the owed limit
// (adaptive: OwedGapFactor times the longest recent reply gap, if more) is a
// dead peer, and DeadPeerError.Owed says so. SetBlocked suspends the rule
// while the broker blocks the connection. On Linux, SetUserTimeout sets
// TCP_USER_TIMEOUT, and TCP_INFO keeps any verdict from being given while the
// kernel holds data this process has not read. See owed.go for the rules.
//
// # Stalled callbacks
//
// A Watchdog arms one timer per watched call. If the call outlives its
// threshold, the report function receives a Stall with the stuck goroutine's
// stack, and a second Stall when the call returns.
//
//	wd := heartbeat.NewWatchdog(func(s heartbeat.Stall) { log.Printf("%s: %v\n%s", s.Name, s.Elapsed, s.Stack) })
//	done := wd.Watch("consumer orders/q1", 5*time.Second)
//	handler(delivery)
//	done()
//
// A goroutine that runs many callbacks, such as a dispatcher, binds a Lane
// once with wd.Lane() and calls Lane.Watch, which is about twenty times cheaper.
package heartbeat
