package conn

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"password", "amqp://user:s3cret@host:5672/vhost", "amqp://user:***@host:5672/vhost"},
		{"no password", "amqp://user@host:5672/", "amqp://user@host:5672/"},
		{"no userinfo", "amqps://host/", "amqps://host/"},
		{"escaped password", "amqp://u:p%40ss%2Fword@h:1/%2F", "amqp://u:***@h:1/%2F"},
		{"unparseable keeps scheme only", "amqp://u:s3cret@h:bad port/", "amqp://<unparseable URL>"},
		{"garbage", "::s3cret::", "<unparseable URL>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"s3cret", "p%40ss", "p@ss"} {
				if strings.Contains(got, secret) {
					t.Errorf("RedactURL(%q) = %q leaks %q", tt.in, got, secret)
				}
			}
		})
	}
}
