// Package faultproxy is an in-process TCP proxy for injecting network faults
// between a client (warren, or raw amqp091-go) and a real RabbitMQ in tests.
//
// A Proxy listens on 127.0.0.1 and forwards every accepted connection to one
// upstream address. Tests flip faults at any moment, from any goroutine:
//
//   - Blackhole: a network partition. Bytes and closes are held in both
//     directions and both sockets stay open; Heal delivers everything in
//     order, then any held close.
//   - Reset: every current connection is aborted with a TCP RST on both sides.
//   - Refuse: new connections get ECONNREFUSED; current ones carry on.
//   - SetLatency: a one-way delay on every chunk, order preserved.
//
// Usage:
//
//	p, err := faultproxy.New("127.0.0.1:5672")
//	if err != nil { ... }
//	defer p.Close()
//	url := "amqp://guest:guest@" + p.Addr() + "/"
//	// ... connect through url ...
//	p.Blackhole() // the broker goes silent; heartbeats stop arriving
//	p.Heal()      // held frames are delivered, nothing is lost
//
// # Why not Toxiproxy
//
// Toxiproxy's "timeout" toxic, the usual way to simulate a partition, drops
// the bytes it stops. A real partition loses nothing: TCP retransmits, and
// the data arrives once the path heals. Dropping bytes from the middle of an
// AMQP stream leaves the two peers with corrupt framing after a heal, which
// tests a failure no network produces and hides the one we care about (a
// connection that resumes, or is declared dead, with its stream intact).
// faultproxy holds instead: each direction buffers up to MaxHeld bytes and
// then stops reading, so the sender feels TCP backpressure rather than loss.
// A close seen during the hold is delivered only after the held bytes.
//
// It also needs no extra server process, container or dependency (standard
// library only), and each test owns its proxy in-process, so parallel tests
// cannot disturb each other's faults.
package faultproxy
