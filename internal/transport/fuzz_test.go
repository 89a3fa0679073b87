package transport

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadMessage: any bytes after a handshake end in messages and then a
// *CloseError, never a panic; both roles, with and without compression.
func FuzzReadMessage(f *testing.F) {
	seeds := [][]byte{
		ctFrame(fin|byte(OpText), false, []byte("hello")),
		ctFrame(byte(OpText), false, []byte("hel")),
		append(ctFrame(byte(OpBinary), false, []byte("a")), ctFrame(fin|byte(OpPing), false, []byte("p"))...),
		ctFrame(fin|rsv1|byte(OpText), false, ctDeflate(f, []byte("compressed"))),
		ctFrame(fin|byte(OpClose), false, ctClosePayload(1000, "bye")),
		ctFrame(fin|byte(OpText), true, []byte("masked")),
		{0x82, 0x7f, 0xff, 0, 0, 0, 0, 0, 0, 1},
	}
	for _, s := range seeds {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		o := ConnOptions{Compression: flags&1 != 0, Server: flags&2 != 0, ReadLimit: 1 << 16}
		c := NewConn(&memConn{r: bytes.NewReader(data)}, nil, o)
		for i := 0; ; i++ {
			_, err := c.ReadMessage()
			if err != nil {
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v (%T), want a *CloseError", err, err)
				}
				return
			}
			if i > len(data) {
				t.Fatal("more messages than bytes")
			}
		}
	})
}
