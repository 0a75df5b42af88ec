// Package metrics shows how to export a warren Supervisor's Stats to
// Prometheus. It lives in the integration module so that the library itself
// keeps no Prometheus dependency; copy Register into a service as it is.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warrenmq/warren/conn"
)

// Register adds warren_* collectors reading sup.Stats() to reg. Every metric
// is computed at scrape time from atomics; nothing is updated on hot paths.
func Register(reg prometheus.Registerer, sup *conn.Supervisor, labels prometheus.Labels) error {
	counter := func(name, help string, f func(conn.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(sup.Stats())) })
	}
	gauge := func(name, help string, f func(conn.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(sup.Stats()) })
	}
	collectors := []prometheus.Collector{
		gauge("warren_state", "Supervisor state: 0 Connecting, 1 Ready, 2 Reconnecting, 3 Closing, 4 Closed.",
			func(s conn.Stats) float64 { return float64(s.State) }),
		gauge("warren_blocked", "1 while the broker blocks the connection (resource alarm).",
			func(s conn.Stats) float64 {
				if s.Blocked {
					return 1
				}
				return 0
			}),
		counter("warren_dials_total", "Dial attempts.", func(s conn.Stats) uint64 { return s.Dials }),
		counter("warren_dials_failed_total", "Failed dials.", func(s conn.Stats) uint64 { return s.FailedDials }),
		counter("warren_reconnects_total", "Connections ready after a loss.", func(s conn.Stats) uint64 { return s.Reconnects }),
		counter("warren_dead_peers_total", "Connections closed for silence.", func(s conn.Stats) uint64 { return s.DeadPeers }),
		counter("warren_events_dropped_total", "Events dropped because OnEvent lagged.", func(s conn.Stats) uint64 { return s.EventsDropped }),
		counter("warren_stalls_total", "User callbacks that ran past the stall threshold.", func(s conn.Stats) uint64 { return s.Stalls }),
		counter("warren_published_total", "Messages published.", func(s conn.Stats) uint64 { return s.Published }),
		counter("warren_confirmed_total", "Messages confirmed by the broker.", func(s conn.Stats) uint64 { return s.Confirmed }),
		counter("warren_republished_total", "Messages republished after a connection loss.", func(s conn.Stats) uint64 { return s.Republished }),
		counter("warren_delivered_total", "Deliveries handed to consumer handlers.", func(s conn.Stats) uint64 { return s.Delivered }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
