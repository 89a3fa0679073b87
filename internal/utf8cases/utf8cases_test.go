package utf8cases

import (
	"testing"
	"unicode/utf8"
)

func TestCasesAreWhatTheySay(t *testing.T) {
	for i, s := range Valid {
		if !utf8.ValidString(s) {
			t.Errorf("Valid[%d] %q is not valid UTF-8", i, s)
		}
	}
	for i, s := range Invalid {
		if utf8.ValidString(s) {
			t.Errorf("Invalid[%d] %q is valid UTF-8", i, s)
		}
	}
}
