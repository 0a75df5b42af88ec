package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, tc := range []struct {
		name   string
		values []string
		want   string // "" with ok: a generated UUID
		ok     bool
	}{
		{"absent: generated", nil, "", true},
		{"kept as sent", []string{"order-42"}, "order-42", true},
		{"128 characters", []string{strings.Repeat("k", 128)}, strings.Repeat("k", 128), true},
		{"empty", []string{""}, "", false},
		{"too long", []string{strings.Repeat("k", 129)}, "", false},
		{"space", []string{"a b"}, "", false},
		{"control", []string{"a\x01"}, "", false},
		{"non-ASCII", []string{"naïve"}, "", false},
		{"two of them", []string{"a", "b"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add(idempotencyHeader, v)
			}
			got, err := idempotencyKey(h)
			switch {
			case !tc.ok && err == nil:
				t.Fatalf("key %q accepted", tc.values)
			case tc.ok && err != nil:
				t.Fatal(err)
			case tc.ok && tc.want == "" && !uuid.MatchString(got):
				t.Fatalf("generated key %q is not a UUID v4", got)
			case tc.ok && tc.want != "" && got != tc.want:
				t.Fatalf("key = %q, want %q", got, tc.want)
			}
		})
	}
	if a, b := newKey(), newKey(); a == b {
		t.Errorf("two generated keys are equal: %q", a)
	}
}
