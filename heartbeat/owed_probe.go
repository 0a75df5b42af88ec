package heartbeat

// The owed probe: telling a broker that holds replies from a dead one.
//
// A live broker can hold the replies a client is owed for longer than the
// owed limit: a quorum queue whose leader's node died confirms nothing until
// a new leader takes commands (measured on a 3-node RabbitMQ 3.10.8 cluster
// at 1,000 msg/s: 0.35 to 0.6 s, and 2.9 s on a loaded host, against the
// 500 ms default limit), and a queue writing to a slow disk confirms late.
// Silence from the queues is then no evidence about the peer, and declaring
// it dead only moves the client to another node whose queues wait for the
// same leader. The broker's connection and channel processes keep
// answering meanwhile: in the same measurement a basic.qos on another
// channel of the publishing connection came back within 12 ms every time.
//
// So, halfway to the owed limit, the Monitor asks its owner to send such a
// request (SetOwedProbe). Any read, the probe's answer included, ends the
// owed wait, so a peer that answers is not declared dead; the next publish
// starts a new wait, which probes again at its own halfway point. A
// partitioned peer answers nothing, and the verdict still falls at the
// limit: detection is not slower. No verdict falls without a probe, nor
// less than half the limit after it: a timer that fires late (a starved
// host) or a check deferred to the end of an unblock grace sends the probe
// then, and judges half a limit later. A read that ends a probed wait is not a
// sample for the adaptive limit, since it may be the probe's answer.
//
// The probe does not help when the broker stops reading the socket (its
// credit flow, a starved host): the probe waits behind the publishes in the
// same byte stream, and the rule judges as it did without it.

// SetOwedProbe gives the replies-owed rule a probe: probe is called, on the
// Monitor's timer goroutine and without its lock, when a reply has been owed
// for half the owed limit with nothing read, at most once per owed wait. It
// must not block: it should start a request the peer answers on the same
// connection without waiting on whatever holds the reply (see above) and
// return. It must be called before Start; nil, the default, sends no probe.
func (m *Monitor) SetOwedProbe(probe func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probe = probe
}

// OwedProbes returns how many probes the owed rule has asked for.
func (m *Monitor) OwedProbes() uint64 { return m.probes.Load() }
