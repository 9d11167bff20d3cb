package providers

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// SSEEvent is one server-sent event.
type SSEEvent struct {
	Name string
	Data []byte
}

// SSEReader parses a text/event-stream (WHATWG HTML, server-sent events).
type SSEReader struct {
	r *bufio.Reader
}

// NewSSEReader reads the stream r.
func NewSSEReader(r io.Reader) *SSEReader { return &SSEReader{r: bufio.NewReaderSize(r, 16<<10)} }

// Buffered reports whether bytes of the stream are already read but not yet parsed.
func (s *SSEReader) Buffered() bool { return s.r.Buffered() > 0 }

// MaxSSELine bounds a line of the stream and an event's data, and so the memory a provider that
// never ends a line (a fault, or a hostile endpoint) can make router hold.
const MaxSSELine = 8 << 20

var errSSETooLong = fmt.Errorf("the provider sent a line or event over %d bytes", MaxSSELine)

// readLine returns the next line, up to MaxSSELine bytes. A line that fits the buffer is a view
// of it, valid until the next read.
func (s *SSEReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		if len(long) > MaxSSELine {
			return nil, errSSETooLong
		}
		line, err = s.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// Next returns the next event with data, or io.EOF.
func (s *SSEReader) Next() (SSEEvent, error) {
	var ev SSEEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil && (len(line) == 0 || err != io.EOF) {
			if err == io.EOF && hasData {
				ev.Data = data
				return ev, nil
			}
			return ev, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			ev = SSEEvent{}
			continue
		}
		if line[0] == ':' {
			continue // comment, e.g. a keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if len(data)+len(value) > MaxSSELine {
				return ev, errSSETooLong
			}
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
}
