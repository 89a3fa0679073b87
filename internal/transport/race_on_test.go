//go:build race

package transport

// raceEnabled: sync.Pool drops items at random under the race detector.
const raceEnabled = true
