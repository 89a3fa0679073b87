// Package utf8cases holds valid and invalid UTF-8 (RFC 3629) for tests,
// after Autobahn's group 6 (which follows Markus Kuhn's stress test): the
// client's incremental checker is tried on them in internal/transport, and
// the client as a whole in the conformance tests. Callers must not modify
// them.
package utf8cases

// Valid is valid UTF-8.
var Valid = []string{
	"", "Hello-µ@ßöäüàá-UTF-8!!", "κόσμε", "\x00",
	"\u0080", "\u0800", "\U00010000", // the first of each length
	"\u007f", "\u07ff", "\uffff", "\U0010ffff", // the last of each length
	"\ud7ff", "\ue000", "\ufffd", // around the surrogates
	"\ufffe", "\U0001fffe", // non-characters are valid UTF-8
}

// Invalid is invalid UTF-8.
var Invalid = []string{
	"κόσμε\xed\xa0\x80edited",                      // 6.3.1: a surrogate
	"\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80\xbf", // lone continuation bytes
	"abc\x80def",
	"\xc0 ", "\xe0 ", "\xf0 ", "\xf8 ", "\xfc ", // a start byte and a space
	"\xc2", "\xe0\xa0", "\xf0\x90\x80", "\xdf", "\xef\xbf", "\xf4\x8f\xbf", // the last byte missing
	"\xfe", "\xff", "\xfe\xfe\xff\xff", // impossible bytes
	"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", // overlong '/'
	"\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xc0\x80", "\xe0\x80\x80", // overlong
	"\xed\xa0\x80", "\xed\xad\xbf", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", // surrogates
	"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", // above U+10FFFF
	"κόσμε\xf4\x90\x80\x80edited",
}
