package conn

import (
	"strings"
	"testing"
)

func TestURLProblem(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"fine", "amqp://u:s3cret@h:5672/v", ""},
		{"fine amqps with query", "amqps://u:s3cret@h/v?heartbeat=10", ""},
		{"fine default host", "amqp:///", ""},
		{"fine upper case scheme", "AMQP://h/", ""},
		{"empty", "", "empty URL"},
		{"missing colon", "amqp//guest:s3cret@127.0.0.1", `missing ":" after the scheme`},
		{"missing slashes", "amqp:guest:s3cret@127.0.0.1", `missing "//" after the scheme`},
		{"other scheme", "http://u:s3cret@h/", `scheme "http" is not amqp or amqps`},
		{"no scheme", "guest:s3cret@h", "must start with amqp:// or amqps://"},
		{"raw / in password", "amqp://guest:12/s3cret@h/", `"@" after the host`},
		{"password as port", "amqp://guest:s3cret/x@h/", "invalid port after host"},
		{"port out of range", "amqp://h:99999/", "port must be a number from 1 to 65535"},
		{"bad heartbeat", "amqp://h/?heartbeat=s3cret", "query parameter heartbeat is not an uint16"},
		{"space", "amqp://u:s3 cret@h/", "invalid"},
		{"bad escape", "amqp://u:s3cret%zz@h/", "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := urlProblem(tt.in)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("urlProblem(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3") || strings.Contains(got, "cret") {
				t.Errorf("urlProblem(%q) = %q shows the password", tt.in, got)
			}
		})
	}
}
