package conn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPublisherErrors(t *testing.T) {
	many := make([]string, pubMaxListedIDs+5)
	for i := range many {
		many[i] = fmt.Sprintf("id-%d", i)
	}
	tests := []struct {
		name     string
		err      error
		is       error
		contains []string
		excludes []string
	}{
		{"returned", &ReturnedError{Return: amqp.Return{ReplyCode: 312, ReplyText: "NO_ROUTE", Exchange: "ex", RoutingKey: "k"}},
			ErrReturned, []string{"312", "NO_ROUTE", `"ex"`, `"k"`}, nil},
		{"unconfirmed", &UnconfirmedError{MessageIDs: []string{"a", "b"}}, ErrUnconfirmed, []string{"2 message(s)", "a, b"}, nil},
		{"unconfirmed many", &UnconfirmedError{MessageIDs: many}, ErrUnconfirmed,
			[]string{"25 message(s)", "id-19", "and 5 more"}, []string{"id-20"}},
		{"confirm lost with reason", pubConfirmLost(errors.New("socket closed")), ErrConfirmLost, []string{"socket closed"}, nil},
		{"confirm lost without reason", pubConfirmLost(nil), ErrConfirmLost, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.is) {
				t.Errorf("%v does not match %v", tc.err, tc.is)
			}
			msg := tc.err.Error()
			for _, s := range tc.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("%q does not contain %q", msg, s)
				}
			}
			for _, s := range tc.excludes {
				if strings.Contains(msg, s) {
					t.Errorf("%q contains %q", msg, s)
				}
			}
		})
	}
}
