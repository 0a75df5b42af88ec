package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/heartbeat"
)

func TestNarration(t *testing.T) {
	forced := fmt.Errorf("warren: connection to amqp://u:xxxxx@h/ lost: %w",
		&amqp.Error{Code: 320, Reason: "CONNECTION_FORCED - warren test: forced close"})
	tests := []struct {
		name string
		side demoSide
		e    conn.Event
		n    demoNote
		want string // "" for no line
	}{
		{"loss, first sign", demoPublisher, conn.Event{Kind: conn.EventConnectionLost, Err: forced},
			demoNote{detected: true, detectAfter: 12 * time.Millisecond},
			"publisher connection lost: 320 CONNECTION_FORCED - warren test: forced close (12ms after the fault began)"},
		{"dead peer", demoConsumer, conn.Event{Kind: conn.EventDeadPeer}, demoNote{},
			"consumer  dead peer: the broker went silent, socket closed"},
		{"recovered", demoPublisher, conn.Event{Kind: conn.EventStateChanged, State: conn.Ready},
			demoNote{recovered: true, outage: 2310 * time.Millisecond}, "publisher Ready again after a 2.31s outage"},
		{"first ready", demoConsumer, conn.Event{Kind: conn.EventStateChanged, State: conn.Ready}, demoNote{}, "consumer  Ready"},
		{"reconnecting is implied", demoPublisher, conn.Event{Kind: conn.EventStateChanged, State: conn.Reconnecting}, demoNote{}, ""},
		{"unblocked by a loss is not a recovery", demoPublisher, conn.Event{Kind: conn.EventUnblocked}, demoNote{}, ""},
		{"republished", demoPublisher, conn.Event{Kind: conn.EventPublisherRepublished, Attempt: 17}, demoNote{},
			"publisher republished 17 messages whose confirms the lost connection took with it"},
		{"dial failures are too many to tell", demoPublisher, conn.Event{Kind: conn.EventDialFailed}, demoNote{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := demoNarration(tt.side, tt.e, tt.n); got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLossReason(t *testing.T) {
	long := errors.New(strings.Repeat("x", 200) + "\nsecond line")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"dead peer", fmt.Errorf("lost: %w", &heartbeat.DeadPeerError{Silence: time.Second}), "dead peer"},
		{"amqp", &amqp.Error{Code: 320, Reason: "CONNECTION_FORCED"}, "320 CONNECTION_FORCED"},
		{"nil", nil, "no reason given"},
		{"long", long, strings.Repeat("x", demoMaxReasonLen-3) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := demoLossReason(tt.err); got != tt.want {
				t.Errorf("lossReason = %q, want %q", got, tt.want)
			}
		})
	}
}
