//go:build !unix

package broker

import "os"

// lockDir does nothing where flock does not exist; sweepStale then never
// removes anything.
func lockDir(string) (*os.File, error) { return nil, nil }

func sweepStale() int { return 0 }
