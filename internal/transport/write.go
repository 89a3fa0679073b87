package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrCloseCutShort is WriteMessage's error when a close frame went out
// between two frames of its message: part of the message was written.
var ErrCloseCutShort = errors.New("wsclient: a close frame cut the message short")

// maxFramePayload is the largest payload of a frame this side writes: a
// longer message is split, and queued control frames go out in between.
const maxFramePayload = 64 << 10

// maxHeader is the longest frame header: 2 + 8 (length) + 4 (mask key).
const maxHeader = 14

// Write buffers, by size class; held only while a frame is written.
var bufClasses = [...]int{512, 4096 + 64, 16384 + 64, maxFramePayload + 64}

var bufPools [len(bufClasses)]sync.Pool

func getBuf(n int) *[]byte {
	for i, size := range bufClasses {
		if n <= size {
			if p, ok := bufPools[i].Get().(*[]byte); ok {
				return p
			}
			b := make([]byte, size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func putBuf(p *[]byte) {
	n := cap(*p)
	for i, size := range bufClasses {
		if n == size {
			*p = (*p)[:size]
			bufPools[i].Put(p)
			return
		}
	}
}

// headerLen is the length of a header for a payload of n bytes.
func (c *Conn) headerLen(n int) int {
	h := 2
	switch {
	case n > 65535:
		h = 10
	case n > 125:
		h = 4
	}
	if !c.server {
		h += 4
	}
	return h
}

// putHeader writes the header for a payload of n bytes to b (headerLen(n)
// long) and returns the mask key (zero in the server role). Under frameMu.
func (c *Conn) putHeader(b []byte, b0 byte, n int) (key [4]byte) {
	b[0] = b0
	var mask byte
	if !c.server {
		mask = 0x80
	}
	i := 2
	switch {
	case n > 65535:
		b[1] = mask | 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		i = 10
	case n > 125:
		b[1] = mask | 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		i = 4
	default:
		b[1] = mask | byte(n)
	}
	if !c.server {
		// math/rand/v2's top-level source: the runtime's per-thread ChaCha8,
		// seeded from the OS; unpredictable, and no state per connection.
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
		copy(b[i:], key[:])
	}
	return key
}

// writeRaw hands b to the socket, bounded by WriteTimeout. Under frameMu.
//
// The socket's write deadline moves only when less than WriteTimeout is left
// on it, to WriteTimeout + 1/8 ahead: every write gets between WriteTimeout
// and 9/8 of it, and the deadline (a runtime timer, reset under the poller's
// lock) changes once per WriteTimeout/8 of writing instead of on every
// write. One clock read per write remains. (What it saves is measured in
// BENCHMARKS.md.)
func (c *Conn) writeRaw(b []byte) error {
	if c.writeTimeout > 0 {
		now := time.Now()
		if c.writeDeadline.Sub(now) < c.writeTimeout {
			d := now.Add(c.writeTimeout + c.writeTimeout/8)
			if err := c.nc.SetWriteDeadline(d); err != nil {
				return err
			}
			c.writeDeadline = d
		}
	}
	_, err := c.nc.Write(b)
	return err
}

// writeFrame writes one frame (header and payload in one buffer, one socket
// write). The payload is copied (masked in the client role): p is never
// modified. Under frameMu.
func (c *Conn) writeFrame(b0 byte, p []byte) error {
	h := c.headerLen(len(p))
	bp := getBuf(h + len(p))
	b := (*bp)[:h+len(p)]
	key := c.putHeader(b, b0, len(p))
	if c.server {
		copy(b[h:], p)
	} else {
		maskCopy(b[h:], p, key)
	}
	err := c.writeRaw(b)
	putBuf(bp)
	return err
}

// failWrite ends the connection over a socket write error and returns the
// error WriteMessage reports.
func (c *Conn) failWrite(err error) error {
	c.end(err)
	return fmt.Errorf("wsclient: write: %w", err)
}

// lockMessage takes the message lock, waiting at most until ctx is done.
func (c *Conn) lockMessage(ctx context.Context) error {
	select {
	case c.msgSem <- struct{}{}:
		return nil
	default:
	}
	done := ctx.Done()
	if done == nil {
		c.msgSem <- struct{}{}
		return nil
	}
	select {
	case c.msgSem <- struct{}{}:
		return nil
	case <-done:
		return ctx.Err()
	}
}

func (c *Conn) unlockMessage() { <-c.msgSem }

// unlockFrame writes the queued control frames and releases the frame lock,
// then takes it again if a control frame was queued meanwhile (its writer's
// TryLock failed while this side held the lock).
func (c *Conn) unlockFrame() {
	for {
		if c.pending.Load() != 0 {
			c.flushControl()
		}
		c.frameMu.Unlock()
		if c.pending.Load() == 0 || !c.frameMu.TryLock() {
			return
		}
	}
}

// WriteMessage writes one message: op is OpText, OpBinary, OpPing or OpPong
// (whose payload is at most 125 bytes). Messages from concurrent callers are
// serialized, in order of arrival; ctx bounds only the wait for the others.
// It returns nil once the whole message was handed to the socket. When
// nothing of it was written, the error is ctx's, or errors.Is ErrClosed (the
// connection ended) or ErrCloseSent (a close frame went first). A socket
// write error ends the connection and is returned wrapped; a close frame
// written between two frames of the message gives ErrCloseCutShort.
func (c *Conn) WriteMessage(ctx context.Context, op Opcode, data []byte) error {
	switch op {
	case OpText, OpBinary:
	case OpPing, OpPong:
		if len(data) > MaxControlPayload {
			return fmt.Errorf("wsclient: %d-byte control frame payload (at most %d)", len(data), MaxControlPayload)
		}
	default:
		return fmt.Errorf("wsclient: cannot write opcode %d", op)
	}
	if c.dead.Load() {
		return ErrClosed
	}
	if c.closeSent.Load() {
		return ErrCloseSent
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	var err error
	if c.compress && !op.IsControl() {
		err = c.writeCompressed(op, data)
	} else {
		err = c.writeFrames(byte(op), data)
	}
	c.unlockMessage()
	return err
}

// startErr is the error for a message of which nothing could be written, nil
// when it may start. Under frameMu.
func (c *Conn) startErr() error {
	if c.dead.Load() {
		return ErrClosed
	}
	if c.closeSent.Load() {
		return ErrCloseSent
	}
	return nil
}

// writeFrames writes data as frames of at most maxFramePayload bytes; b0 is
// the first frame's opcode and RSV bits. Under the message lock.
func (c *Conn) writeFrames(b0 byte, data []byte) error {
	first := true
	for {
		p := data
		fin := byte(0x80)
		if len(p) > maxFramePayload {
			p, fin = p[:maxFramePayload], 0
		}
		c.frameMu.Lock()
		if err := c.startErr(); err != nil {
			c.unlockFrame()
			if !first {
				if errors.Is(err, ErrCloseSent) {
					return ErrCloseCutShort
				}
				return fmt.Errorf("wsclient: write: the connection ended in the middle of the message: %w", c.endErr())
			}
			return err
		}
		if err := c.writeFrame(b0|fin, p); err != nil {
			err = c.failWrite(err)
			c.frameMu.Unlock()
			return err
		}
		c.unlockFrame()
		if fin != 0 {
			return nil
		}
		data, b0, first = data[len(p):], byte(OpContinuation), false
	}
}

// queueControl puts a control frame in its slot and writes it now if no frame
// is being written; otherwise the writer of the current frame writes it right
// after. It never waits for a write in progress.
func (c *Conn) queueControl(kind uint32, payload []byte) error {
	c.mu.Lock()
	switch {
	case c.failErr != nil:
		c.mu.Unlock()
		return ErrClosed
	case c.closeSent.Load():
		c.mu.Unlock()
		if kind == pendingPong {
			return nil // no pong after a close: dropped
		}
		return ErrCloseSent
	}
	switch kind {
	case pendingPong:
		c.pongLen = copy(c.pongFrame[:], payload)
	case pendingPing:
		c.pingLen = copy(c.pingFrame[:], payload)
	case pendingClose:
		c.closeLen = copy(c.closeFrame[:], payload)
		c.closeSent.Store(true)
	}
	c.pending.Store(c.pending.Load() | kind)
	c.mu.Unlock()
	if c.frameMu.TryLock() {
		c.unlockFrame()
	}
	return nil
}

// flushControl writes the queued control frames (pong, ping, then close) in
// one socket write. Under frameMu.
func (c *Conn) flushControl() {
	bp := getBuf(3 * (maxHeader + MaxControlPayload))
	b := (*bp)[:0]
	c.mu.Lock()
	kinds := c.pending.Swap(0)
	if c.failErr != nil || c.closeDone {
		c.mu.Unlock()
		putBuf(bp)
		return
	}
	if kinds&pendingPong != 0 {
		b = c.appendControl(b, OpPong, c.pongFrame[:c.pongLen])
	}
	if kinds&pendingPing != 0 {
		b = c.appendControl(b, OpPing, c.pingFrame[:c.pingLen])
	}
	if kinds&pendingClose != 0 {
		b = c.appendControl(b, OpClose, c.closeFrame[:c.closeLen])
		c.closeDone = true
	}
	c.mu.Unlock()
	if len(b) > 0 {
		if err := c.writeRaw(b); err != nil {
			c.end(err)
		}
	}
	putBuf(bp)
	if kinds&pendingClose != 0 {
		// Read after the write: AbortWhenClosed may come while it is in
		// progress (it then sees closeOut false and leaves the drop here).
		c.mu.Lock()
		c.closeOut = true
		abort := c.abortOnClose
		c.mu.Unlock()
		if abort {
			c.Abort() // AbortWhenClosed: the close frame is out
		}
	}
}

// appendControl appends a control frame to b, whose capacity suffices.
func (c *Conn) appendControl(b []byte, op Opcode, p []byte) []byte {
	h := c.headerLen(len(p))
	n := len(b)
	b = b[:n+h+len(p)]
	key := c.putHeader(b[n:], 0x80|byte(op), len(p))
	if c.server {
		copy(b[n+h:], p)
	} else {
		maskCopy(b[n+h:], p, key)
	}
	return b
}

// Ping queues a ping with payload (at most 125 bytes) and writes it unless a
// frame is being written (its writer then writes the ping right after). It
// never waits for a write. ErrCloseSent after a close, ErrClosed once the
// connection has ended.
func (c *Conn) Ping(payload []byte) error {
	if len(payload) > MaxControlPayload {
		return fmt.Errorf("wsclient: %d-byte ping payload (at most %d)", len(payload), MaxControlPayload)
	}
	return c.queueControl(pendingPing, payload)
}

// Close queues a close frame with code and reason, like Ping: it never waits.
// After it, data messages not yet started fail with ErrCloseSent. It returns
// ErrCloseSent when a close frame was queued or sent already.
func (c *Conn) Close(code int, reason string) error {
	if !ValidCloseCode(code) {
		return fmt.Errorf("wsclient: invalid close code %d", code)
	}
	if len(reason) > MaxCloseReason {
		return fmt.Errorf("wsclient: close reason of %d bytes (at most %d)", len(reason), MaxCloseReason)
	}
	if !utf8.ValidString(reason) {
		return errors.New("wsclient: close reason is not valid UTF-8")
	}
	var p [2 + MaxCloseReason]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	n := 2 + copy(p[2:], reason)
	return c.queueControl(pendingClose, p[:n])
}

// queueCloseFrame queues the reader's close frame: the echo of the peer's
// close, or this side's close over a protocol violation. A close already
// queued wins. code 0: a close frame with an empty payload.
func (c *Conn) queueCloseFrame(code int, reason string) {
	var p [2 + MaxCloseReason]byte
	n := 0
	if code != 0 {
		binary.BigEndian.PutUint16(p[:], uint16(code))
		n = 2 + copy(p[2:], reason)
	}
	_ = c.queueControl(pendingClose, p[:n])
}
