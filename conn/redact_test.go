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
		{"query kept", "amqps://u:s3cret@h/v?heartbeat=10", "amqps://u:***@h/v?heartbeat=10"},
		{"IPv6 host", "amqp://u:s3cret@[::1]:5672/", "amqp://u:***@[::1]:5672/"},
		{"missing colon", "amqp//guest:s3cret@127.0.0.1", "amqp//***@127.0.0.1"},
		{"missing slashes", "amqp:guest:s3cret@127.0.0.1", "amqp:***@127.0.0.1"},
		{"no scheme", "guest:s3cret@127.0.0.1", "guest:***@127.0.0.1"},
		{"raw @ in password", "amqp://u:s3@cret@h/", "amqp://u:***@h/"},
		{"raw / in password", "amqp://u:12/s3cret@h/", "amqp://***@h/"},
		{"bad port", "amqp://u:s3cret@h:bad port/", "amqp://***@h:bad port/"},
		{"@ typed as :", "amqp://guest:s3cret:host", "amqp://***"},
		{"garbage", "::s3cret::", "***"},
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
