package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestFleetComesBack: every client of a small fleet reconnects after the
// server restarts, and each subscribed once per connection.
func TestFleetComesBack(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-clients", "50", "-rate", "200", "-down", "300ms", "-duration", "4s"}, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "-- server back") {
		t.Fatalf("no restart:\n%s", s)
	}
	// Lines after the restart: the fleet is whole again at some point.
	after := s[strings.Index(s, "-- server back"):]
	m := regexp.MustCompile(`open\s+(\d+)/50\s+connects\s+(\d+)\s+disconnects\s+\d+\s+sent\s+(\d+)`).FindAllStringSubmatch(after, -1)
	whole := false
	for _, l := range m {
		open, _ := strconv.Atoi(l[1])
		connects, _ := strconv.Atoi(l[2])
		sent, _ := strconv.Atoi(l[3])
		if sent != connects {
			t.Errorf("sent %d subscriptions for %d connects", sent, connects)
		}
		if open == 50 && connects >= 100 {
			whole = true
		}
	}
	if !whole {
		t.Errorf("the fleet did not come back whole:\n%s", s)
	}
}
