package smoke

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

func TestUsersAndVhosts(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	user, vhost := uniqueName("smoke-user"), uniqueName("smoke-vhost")
	const pass = "pa ss/w?rd"

	if err := b.Faults.AddUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	userDeleted := false
	t.Cleanup(func() {
		if !userDeleted {
			_ = b.Faults.DeleteUser(context.WithoutCancel(ctx), user)
		}
	})
	if err := b.Faults.AddVhost(ctx, vhost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Faults.DeleteVhost(context.WithoutCancel(ctx), vhost); err != nil {
			t.Errorf("DeleteVhost: %v", err)
		}
	})
	if err := b.Faults.SetPermissions(ctx, vhost, user); err != nil {
		t.Fatal(err)
	}

	conn := dial(t, b.URLWith(user, pass, vhost), uniqueName("smoke-user-conn"), amqp.Config{})
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declaring a queue in the new vhost: %v", err)
	}
	_ = conn.CloseDeadline(time.Now().Add(closeTimeout))

	tests := []struct {
		name string
		url  string
	}{
		{"wrong password", b.URLWith(user, "not-"+pass, vhost)},
		{"no permission on the default vhost", b.URLWith(user, pass, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := amqp.DialConfig(tt.url, amqp.Config{Dial: amqp.DefaultDial(eventTimeout)}); err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			} else {
				t.Logf("dial failed as expected: %v", err)
			}
		})
	}

	if err := b.Faults.DeleteUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	userDeleted = true
	start := time.Now()
	_, err = amqp.DialConfig(b.URLWith(user, pass, vhost), amqp.Config{Dial: amqp.DefaultDial(eventTimeout)})
	if !errors.Is(err, amqp.ErrCredentials) {
		t.Errorf("dial as a deleted user = %v, want ErrCredentials", err)
	}
	t.Logf("dial as a deleted user failed after %v", time.Since(start).Round(time.Millisecond))
}
