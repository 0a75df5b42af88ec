package main

import (
	"fmt"
	"io"
	"net/http"

	"github.com/warrenmq/warren/conn"
)

// metricsSources is what /metrics exports: each supervisor's Stats under a
// "connection" label, and the service's own counters.
type metricsSources struct {
	supervisors []namedSupervisor
	stats       *serviceStats
	window      *window
}

type namedSupervisor struct {
	name string // "publish" or "consume"
	sup  *conn.Supervisor
}

// registerMetrics serves /metrics on mux in the Prometheus text format,
// written by hand so the example needs no metrics library. It is the one
// seam for metrics: to use a Prometheus registry instead (the collectors of
// integration/metrics or a contrib module), replace this function's body
// with one that registers collectors reading the same sources and serves
// promhttp's handler.
func registerMetrics(mux *http.ServeMux, src metricsSources) {
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, src)
	})
}

func writeMetrics(w io.Writer, src metricsSources) {
	stats := make([]conn.Stats, len(src.supervisors))
	for i, s := range src.supervisors {
		stats[i] = s.sup.Stats()
	}
	perConn := func(name, kind, help string, v func(conn.Stats) float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
		for i, s := range src.supervisors {
			fmt.Fprintf(w, "%s{connection=%q} %g\n", name, s.name, v(stats[i]))
		}
	}
	b := func(x bool) float64 {
		if x {
			return 1
		}
		return 0
	}
	perConn("warren_ready", "gauge", "1 while the connection is Ready.",
		func(s conn.Stats) float64 { return b(s.State == conn.Ready) })
	perConn("warren_blocked", "gauge", "1 while the broker blocks the connection.",
		func(s conn.Stats) float64 { return b(s.Blocked) })
	perConn("warren_dials_total", "counter", "Dial attempts.", func(s conn.Stats) float64 { return float64(s.Dials) })
	perConn("warren_failed_dials_total", "counter", "Failed dials.", func(s conn.Stats) float64 { return float64(s.FailedDials) })
	perConn("warren_connections_lost_total", "counter", "Ready connections lost.",
		func(s conn.Stats) float64 { return float64(s.ConnectionsLost) })
	perConn("warren_dead_peers_total", "counter", "Connections closed because the broker went silent.",
		func(s conn.Stats) float64 { return float64(s.DeadPeers) })
	perConn("warren_published_total", "counter", "Messages written, republications included.",
		func(s conn.Stats) float64 { return float64(s.Published) })
	perConn("warren_confirmed_total", "counter", "Messages the broker confirmed.",
		func(s conn.Stats) float64 { return float64(s.Confirmed) })
	perConn("warren_republished_total", "counter", "Messages republished after a lost connection.",
		func(s conn.Stats) float64 { return float64(s.Republished) })
	perConn("warren_delivered_total", "counter", "Deliveries handed to consumers, duplicates included.",
		func(s conn.Stats) float64 { return float64(s.Delivered) })
	perConn("warren_handler_errors_total", "counter", "Consumer handler calls that failed.",
		func(s conn.Stats) float64 { return float64(s.HandlerErrors) })
	perConn("warren_events_dropped_total", "counter", "Events dropped because the buffer was full.",
		func(s conn.Stats) float64 { return float64(s.EventsDropped) })

	st := src.stats
	fmt.Fprintf(w, "# HELP orders_responses_total Responses of POST /orders by outcome.\n# TYPE orders_responses_total counter\n")
	for _, r := range []struct {
		outcome string
		n       uint64
	}{
		{"accepted", st.accepted.Load()}, {"unavailable", st.unavailable.Load()},
		{"client_error", st.clientErrors.Load()}, {"bad_gateway", st.badGateway.Load()},
		{"internal_error", st.internalErrors.Load()},
	} {
		fmt.Fprintf(w, "orders_responses_total{outcome=%q} %d\n", r.outcome, r.n)
	}
	fmt.Fprintf(w, "# HELP orders_consumed_total Orders handled by the consumer.\n# TYPE orders_consumed_total counter\norders_consumed_total %d\n",
		st.consumed.Load())
	fmt.Fprintf(w, "# HELP orders_duplicates_total Copies of processed orders the handler caught (the consumer's dedupe window catches most before it).\n# TYPE orders_duplicates_total counter\n")
	fmt.Fprintf(w, "orders_duplicates_total{caught=%q} %d\n", "in_progress", st.busyDuplicates.Load())
	fmt.Fprintf(w, "orders_duplicates_total{caught=%q} %d\n", "just_processed", st.lateDuplicates.Load())
	fmt.Fprintf(w, "# HELP orders_in_flight Publishes waiting for a confirm.\n# TYPE orders_in_flight gauge\norders_in_flight %d\n",
		src.window.inUse())
	fmt.Fprintf(w, "# HELP orders_in_flight_limit MAX_IN_FLIGHT.\n# TYPE orders_in_flight_limit gauge\norders_in_flight_limit %d\n",
		src.window.size())
}
