package testkit

import (
	"crypto/rand"
	"encoding/hex"
)

// UniqueName returns prefix plus a random suffix, so reruns and parallel
// test binaries on one broker never meet each other's queues or connections.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + "-" + hex.EncodeToString(b)
}
