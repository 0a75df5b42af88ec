package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
)

// idempotencyHeader names the request header whose value identifies an
// order. It travels as the message's MessageId, so the consumer's dedupe
// window drops a second copy: a client that retries after a 503 or a lost
// response with the same key creates one order, not two. Go's own HTTP
// client also retries a POST that carries it when a kept-alive connection
// closes under it.
const idempotencyHeader = "Idempotency-Key"

// maxKeyLen bounds a key. A MessageId is an AMQP short string (255 bytes);
// 128 leaves room and fits a UUID, a ULID or a hash many times over.
const maxKeyLen = 128

var errBadKey = errors.New("Idempotency-Key must be 1 to 128 visible ASCII characters (no spaces)")

// idempotencyKey returns the request's key, or a new random one (a UUID v4)
// when it has none. A key that is not visible ASCII is refused rather than
// changed: two clients' keys must never be mapped onto one.
func idempotencyKey(h http.Header) (string, error) {
	vals := h.Values(idempotencyHeader)
	switch len(vals) {
	case 0:
		return newKey(), nil
	case 1:
	default:
		return "", fmt.Errorf("%w; got %d of them", errBadKey, len(vals))
	}
	k := vals[0]
	if len(k) == 0 || len(k) > maxKeyLen {
		return "", errBadKey
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return "", errBadKey
		}
	}
	return k, nil
}

// newKey returns a random UUID (version 4).
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
