package main

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestBenchMessageRoundTrip(t *testing.T) {
	tests := []struct{ id, size, wantLen int }{
		{0, 100, 100},
		{49999, 100, 100},
		{7, 1, benchMinBody},
	}
	for _, tt := range tests {
		m := benchMessage(tt.id, tt.size)
		if len(m.Body) != tt.wantLen {
			t.Errorf("message %d: body of %d bytes, want %d", tt.id, len(m.Body), tt.wantLen)
		}
		if m.DeliveryMode != amqp.Persistent {
			t.Errorf("message %d is not persistent", tt.id)
		}
		got, err := benchMessageID(m.Body)
		if err != nil || got != tt.id {
			t.Errorf("benchMessageID = %d, %v; want %d", got, err, tt.id)
		}
	}
	if _, err := benchMessageID([]byte("short")); err == nil {
		t.Error("a 5-byte body has a message number")
	}
}

func TestBitset(t *testing.T) {
	const n = 13
	b := newBenchBitset(n)
	for _, i := range []int{0, 7, 8, 12} {
		b.set(i)
	}
	if got := b.count(); got != 4 {
		t.Errorf("count = %d, want 4", got)
	}
	back, err := decodeBenchBitset(b.encode(), n)
	if err != nil {
		t.Fatal(err)
	}
	for i := -1; i <= n+8; i++ {
		want := i == 0 || i == 7 || i == 8 || i == 12
		if back.has(i) != want {
			t.Errorf("has(%d) = %v, want %v", i, back.has(i), want)
		}
	}
	if _, err := decodeBenchBitset(b.encode(), 100); err == nil {
		t.Error("a 2-byte bitmap decoded for 100 messages")
	}
	if _, err := decodeBenchBitset("not base64!", n); err == nil {
		t.Error("garbage decoded")
	}
}
