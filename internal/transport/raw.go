package transport

// WriteRaw writes b to the socket exactly as given, in one write, under the
// frame lock: between two frames of the other writers, never inside one. It
// is for test servers that send hand-made or malformed frames; nothing checks
// b. Unlike WriteMessage it is allowed after a close frame was sent (a peer
// must ignore what follows a close). Control frames queued meanwhile go out
// right after it. A write error ends the connection.
func (c *Conn) WriteRaw(b []byte) error {
	c.frameMu.Lock()
	if c.dead.Load() {
		c.frameMu.Unlock()
		return ErrClosed
	}
	if err := c.writeRaw(b); err != nil {
		err = c.failWrite(err)
		c.frameMu.Unlock()
		return err
	}
	c.unlockFrame()
	return nil
}
