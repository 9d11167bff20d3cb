package dispatcher

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// h1Client sends deliveries to one plain-HTTP subscriber over keep-alive HTTP/1.1
// connections, written and read by the delivering goroutine itself. net/http's Transport runs
// two more goroutines per connection and hands every request and response between them,
// which costs more CPU than the rest of a delivery and, with a thousand deliveries in flight,
// holds thousands of goroutine stacks.
type h1Client struct {
	addr string // host:port to dial
	mu   sync.Mutex
	idle []*h1Conn
}

// h1Conn is a connection. It holds no buffers while it waits for an answer, which is most of
// a delivery's time (a subscriber like persist holds requests while it batches): writing and
// reading borrow pooled buffers, and the wait reads into the small head.
type h1Conn struct {
	net.Conn
	head    [256]byte
	pending []byte // what was read into head and not yet consumed
}

// Read gives what the wait for the answer read first, then reads the connection.
func (c *h1Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// h1BufferSize is the pooled read and write buffer: a delivery's headers fit, and a larger
// body is written and read through it without copying the whole.
const h1BufferSize = 4 << 10

var (
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1BufferSize) }}
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1BufferSize) }}
)

// newH1Client returns a client for target, or nil when target needs more than plain
// HTTP/1.1 (TLS), which then goes through net/http.
func newH1Client(target *url.URL) *h1Client {
	if target.Scheme != "http" {
		return nil
	}
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), "80")
	}
	return &h1Client{addr: addr}
}

// response is what a delivery needs of a subscriber's answer, its body read whole (up to
// limit bytes; a longer body is cut there).
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends req (its URL, Host, headers and body; its context bounds the whole exchange) and
// reads the answer. A connection that was idle and turns out closed by the subscriber before
// answering is replaced once, as net/http does for a request it could not have delivered.
func (c *h1Client) do(req *http.Request, limit int64) (response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		conn, reused, err := c.get(ctx)
		if err != nil {
			return response{}, err
		}
		res, keep, answered, err := conn.roundTrip(ctx, req, limit)
		if keep && err == nil {
			c.put(conn)
		} else {
			conn.Close()
		}
		if err != nil && reused && !answered && attempt == 0 && ctx.Err() == nil && req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return response{}, err
			}
			req.Body = body
			continue
		}
		return res, err
	}
}

func (c *h1Client) get(ctx context.Context) (conn *h1Conn, reused bool, err error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		conn = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return conn, true, nil
	}
	c.mu.Unlock()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{Conn: nc}, false, nil
}

func (c *h1Client) put(conn *h1Conn) {
	c.mu.Lock()
	c.idle = append(c.idle, conn)
	c.mu.Unlock()
}

// closeIdle closes the connections not in use.
func (c *h1Client) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, conn := range idle {
		conn.Close()
	}
}

// roundTrip writes req and reads the response. keep says whether the connection can carry
// another request; answered whether any of the response arrived.
func (conn *h1Conn) roundTrip(ctx context.Context, req *http.Request, limit int64) (res response, keep, answered bool, err error) {
	// The context's deadline and cancellation end a blocked read or write at once.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			// The context ended during the exchange: the connection's state is unknown.
			keep = false
			if err == nil {
				err = ctx.Err()
			}
		}
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		// The connection's deadline is the context's, and can fire a moment before the
		// context's own timer does: that timeout is the context's deadline too.
		if dl, ok := ctx.Deadline(); ok && err != nil && ctx.Err() == nil && !time.Now().Before(dl) {
			keep, err = false, context.DeadlineExceeded
		}
	}()

	bw := h1Writers.Get().(*bufio.Writer)
	bw.Reset(conn.Conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	h1Writers.Put(bw)
	if err != nil {
		return res, false, false, err
	}
	n, err := conn.Conn.Read(conn.head[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return res, false, false, err
	}
	conn.pending = conn.head[:n]
	br := h1Readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() {
		if br.Buffered() > 0 || len(conn.pending) > 0 {
			keep = false // more than one answer: something is wrong with the connection
		}
		br.Reset(nil)
		h1Readers.Put(br)
	}()
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return res, false, true, err
	}
	res = response{status: resp.StatusCode, header: resp.Header}
	if resp.ContentLength != 0 {
		res.body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
		if err != nil {
			return res, false, true, err
		}
		if int64(len(res.body)) == limit {
			// Possibly cut short: what is left unread makes the connection unusable.
			var one [1]byte
			if n, _ := resp.Body.Read(one[:]); n > 0 {
				resp.Body.Close()
				return res, false, true, nil
			}
		}
	}
	if err := resp.Body.Close(); err != nil {
		return res, false, true, err
	}
	return res, !resp.Close && !req.Close, true, nil
}
