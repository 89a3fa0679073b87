package transport

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ctFrame encodes one frame: b0 is FIN|RSV|opcode; masked frames use a fixed key.
func ctFrame(b0 byte, masked bool, payload []byte) []byte {
	var b []byte
	b = append(b, b0)
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n > 65535:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	case n > 125:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|byte(n))
	}
	if masked {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		b = append(b, key[:]...)
		for i, x := range payload {
			b = append(b, x^key[i%4])
		}
		return b
	}
	return append(b, payload...)
}

func ctClosePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// ctDeflate compresses p the way a permessage-deflate sender does.
func ctDeflate(t testing.TB, p []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("no sync marker")
	}
	return b[:len(b)-4]
}

// ctInflate undoes ctDeflate.
func ctInflate(t testing.TB, p []byte) []byte {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail[:])))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return b
}

// rawFrame is a frame the peer read.
type rawFrame struct {
	fin, rsv1, masked bool
	op                Opcode
	payload           []byte
}

// ctReadFrame reads one frame from r, unmasking it.
func ctReadFrame(r io.Reader) (rawFrame, error) {
	var f rawFrame
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return f, err
	}
	f.fin, f.rsv1, f.op, f.masked = h[0]&0x80 != 0, h[0]&0x40 != 0, Opcode(h[0]&0x0f), h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(r, x[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(r, x[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// ctPeer is the other end of a net.Pipe: it writes scripts and reads what
// the Conn writes, frame by frame, into frames.
type ctPeer struct {
	t      *testing.T
	nc     net.Conn
	frames chan rawFrame
	wg     sync.WaitGroup
}

// ctPipe makes a Conn over one end of a net.Pipe and a peer on the other.
// readFrames: the peer reads the Conn's frames in the background (else the
// test reads p.nc itself).
func ctPipe(t *testing.T, o ConnOptions, readFrames bool) (*Conn, *ctPeer) {
	a, b := net.Pipe()
	c := NewConn(a, bufio.NewReaderSize(a, 4096), o)
	p := &ctPeer{t: t, nc: b, frames: make(chan rawFrame, 64)}
	if readFrames {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer close(p.frames)
			for {
				f, err := ctReadFrame(b)
				if err != nil {
					return
				}
				p.frames <- f
			}
		}()
	}
	t.Cleanup(func() {
		c.Abort()
		b.Close()
		p.wg.Wait()
	})
	return c, p
}

// send writes the bytes in the background (a pipe write waits for the reader).
func (p *ctPeer) send(b ...[]byte) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, x := range b {
			if _, err := p.nc.Write(x); err != nil {
				return
			}
		}
	}()
}

// sendThenClose writes the bytes, then closes the peer's end.
func (p *ctPeer) sendThenClose(b ...[]byte) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, x := range b {
			if _, err := p.nc.Write(x); err != nil {
				return
			}
		}
		p.nc.Close()
	}()
}

// next is the next frame the Conn wrote.
func (p *ctPeer) next() rawFrame {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatal("the connection ended before the expected frame")
		}
		return f
	case <-time.After(10 * time.Second):
		p.t.Fatal("no frame from the Conn within 10s")
	}
	return rawFrame{}
}

// expectClose reads frames until a close frame, which must carry code (0: an
// empty payload).
func (p *ctPeer) expectClose(code int) rawFrame {
	p.t.Helper()
	for {
		f := p.next()
		if f.op != OpClose {
			continue
		}
		got := 0
		if len(f.payload) >= 2 {
			got = int(binary.BigEndian.Uint16(f.payload))
		}
		if got != code {
			p.t.Fatalf("close frame with code %d (payload %q), want %d", got, f.payload, code)
		}
		return f
	}
}

// readWithin runs ReadMessage with a 10s bound.
func readWithin(t *testing.T, c *Conn) (Message, error) {
	t.Helper()
	type res struct {
		m   Message
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := c.ReadMessage()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(10 * time.Second):
		c.Abort()
		<-ch
		t.Fatal("ReadMessage did not return within 10s")
	}
	return Message{}, nil
}

// asClose asserts that err is a *CloseError.
func asClose(t *testing.T, err error) *CloseError {
	t.Helper()
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *CloseError", err, err)
	}
	return ce
}

// memConn is a net.Conn reading from r and writing to w (io.Discard when nil).
type memConn struct {
	r io.Reader
	w io.Writer
}

func (m *memConn) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error) {
	if m.w == nil {
		return len(p), nil
	}
	return m.w.Write(p)
}
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// repeatReader returns b over and over.
type repeatReader struct {
	b []byte
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.b[r.i:])
		n += k
		r.i = (r.i + k) % len(r.b)
	}
	return n, nil
}

func newTestFlateWriter(w io.Writer) *flate.Writer {
	fw, _ := flate.NewWriter(w, flate.BestCompression)
	return fw
}

// noDeadline is a zero time: no deadline.
var noDeadline time.Time
