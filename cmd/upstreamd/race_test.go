//go:build race

package main

// The binary under test is built with -race too when the tests are, so that
// a data race in the real server fails the run.
func init() { raceEnabled = true }
