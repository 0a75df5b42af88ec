package faultproxy

import "errors"

var (
	// ErrBadUpstream is returned by New when the upstream address is not a
	// host:port pair.
	ErrBadUpstream = errors.New("faultproxy: bad upstream address")
	// ErrRelisten is reported by Err when the proxy could not bind its port
	// again after Refuse(false) or Heal; the proxy then keeps refusing.
	ErrRelisten = errors.New("faultproxy: cannot listen on the same port again")
)
