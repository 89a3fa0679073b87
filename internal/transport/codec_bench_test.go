package transport

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/gorilla/websocket"
)

// Micro-benchmarks over loopback TCP, this codec beside gorilla/websocket as
// a client, against the same kind of server: a drain for writes, a flood of
// prebuilt unmasked frames for reads.

func drain(ws *websocket.Conn) { _, _ = io.Copy(io.Discard, ws.NetConn()) }

func flood(n int) func(*websocket.Conn) {
	var buf bytes.Buffer
	for buf.Len() < 256<<10 {
		buf.Write(ctFrame(fin|byte(OpBinary), false, make([]byte, n)))
	}
	b := buf.Bytes()
	return func(ws *websocket.Conn) {
		nc := ws.NetConn()
		for {
			if _, err := nc.Write(b); err != nil {
				return
			}
		}
	}
}

func gorillaClient(b *testing.B, addr string) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	return ws
}

func benchWrite(b *testing.B, n int) {
	c := ctHandshake(b, ctServer(b, false, drain), false)
	data := make([]byte, n)
	ctx := context.Background()
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.WriteMessage(ctx, OpBinary, data); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGorillaWrite(b *testing.B, n int) {
	ws := gorillaClient(b, ctServer(b, false, drain))
	data := make([]byte, n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRead(b *testing.B, n int) {
	c := ctHandshake(b, ctServer(b, false, flood(n)), false)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if m, err := c.ReadMessage(); err != nil || len(m.Data) != n {
			b.Fatal(err)
		}
	}
}

func benchGorillaRead(b *testing.B, n int) {
	ws := gorillaClient(b, ctServer(b, false, flood(n)))
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, p, err := ws.ReadMessage(); err != nil || len(p) != n {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite64(b *testing.B)         { benchWrite(b, 64) }
func BenchmarkWrite16K(b *testing.B)        { benchWrite(b, 16<<10) }
func BenchmarkGorillaWrite64(b *testing.B)  { benchGorillaWrite(b, 64) }
func BenchmarkGorillaWrite16K(b *testing.B) { benchGorillaWrite(b, 16<<10) }
func BenchmarkRead64(b *testing.B)          { benchRead(b, 64) }
func BenchmarkRead16K(b *testing.B)         { benchRead(b, 16<<10) }
func BenchmarkGorillaRead64(b *testing.B)   { benchGorillaRead(b, 64) }
func BenchmarkGorillaRead16K(b *testing.B)  { benchGorillaRead(b, 16<<10) }

// BenchmarkReadFragmented reads 1 MiB messages in 64-byte fragments (16384
// frames each) from memory.
func BenchmarkReadFragmented(b *testing.B) {
	for _, op := range []Opcode{OpText, OpBinary} {
		b.Run(map[Opcode]string{OpText: "text", OpBinary: "binary"}[op], func(b *testing.B) {
			msg := fragmented(op, 1<<20, 64)
			c := NewConn(&memConn{r: &repeatReader{b: msg}}, nil, ConnOptions{})
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
