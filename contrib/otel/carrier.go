package warrenotel

import (
	amqp "github.com/rabbitmq/amqp091-go"
)

// headerCarrier carries trace context in AMQP message headers: a
// propagation.TextMapCarrier over an amqp.Table.
type headerCarrier amqp.Table

// Get returns the header key as a string. A broker or another client may
// have sent it as a byte string.
func (h headerCarrier) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets the header key.
func (h headerCarrier) Set(key, value string) { h[key] = value }

// Keys lists the header names.
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
