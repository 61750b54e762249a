//go:build !unix

package statefile

// setUmask is a no-op where there is no umask.
func setUmask(mask int) int { return 0 }
