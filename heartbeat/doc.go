// Package heartbeat holds warren's liveness mechanisms.
package heartbeat
