package main

import (
	"net/http"
	"sync/atomic"
)

// serviceStats are the service's own counters, beside the supervisors'
// Stats; /metrics exports both (metrics.go).
type serviceStats struct {
	// Responses of /orders by class.
	accepted, unavailable, clientErrors, badGateway, internalErrors atomicCounter
	// consumed counts orders processed; busyDuplicates the copies sent to
	// retry because another copy was being processed; lateDuplicates the
	// copies dropped because their order was processed moments before.
	consumed, busyDuplicates, lateDuplicates atomicCounter
}

// atomicCounter is a counter the hot paths add to and /metrics reads.
type atomicCounter = atomic.Uint64

// response counts an /orders response.
func (s *serviceStats) response(code int) {
	switch {
	case code == http.StatusAccepted:
		s.accepted.Add(1)
	case code == http.StatusServiceUnavailable:
		s.unavailable.Add(1)
	case code == http.StatusBadGateway:
		s.badGateway.Add(1)
	case code >= 500:
		s.internalErrors.Add(1)
	default:
		s.clientErrors.Add(1)
	}
}
