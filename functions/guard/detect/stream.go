package detect

// DefaultLookBack is how many bytes of a stream before the newest chunk a Stream rescans, so
// that a value split across chunks is found: a value up to this long is found whole.
const DefaultLookBack = 1024

// streamTail is how close to the end of what a stream has received a finding may end and
// still wait for the next chunk: a value at the very end may go on in the next chunk (an
// address "jane@acme.co" before "m").
const streamTail = 16

// DefaultMinScan is how many new bytes a Stream gathers before it rescans its window: a
// stream of one-token chunks would otherwise rescan the look-back for every few bytes.
const DefaultMinScan = 64

// Stream scans a text that arrives in chunks (a streamed response). Each Write rescans the
// last LookBack bytes with the new chunk; findings carry offsets in the whole stream, and each
// is reported once. Injection and jailbreak findings are reported once per stream and detector.
// A Stream is not safe for concurrent use.
type Stream struct {
	sc       *Scanner
	lookBack int
	window   string // the stream's bytes from base on
	base     int    // offset of window[0] in the stream
	seen     map[streamKey]bool
	closed   bool
	minScan  int
	unseen   int // bytes received since the last scan
}

type streamKey struct {
	detector   string
	start, end int
}

// Stream returns a stream scanner with lookBack bytes of look-back (0 means DefaultLookBack).
func (s *Scanner) Stream(lookBack int) *Stream {
	if lookBack <= 0 {
		lookBack = DefaultLookBack
	}
	return &Stream{sc: s, lookBack: lookBack, seen: map[streamKey]bool{}, minScan: DefaultMinScan}
}

// SetMinScan sets how many new bytes a Write gathers before it rescans (1: every Write; the
// default is DefaultMinScan). A finding is reported at most that many bytes, plus the few a
// value may still grow by, after its value arrived.
func (st *Stream) SetMinScan(n int) {
	st.minScan = max(n, 1)
}

// Offset is the number of bytes the stream has received.
func (st *Stream) Offset() int { return st.base + len(st.window) }

// Write adds chunk to the stream and returns the findings completed by it, with offsets in the
// stream. A finding that ends within a few bytes of the end is reported by a later Write or by
// Close, once it cannot grow any more.
func (st *Stream) Write(chunk string) []Finding {
	st.window += chunk
	st.unseen += len(chunk)
	if st.unseen < st.minScan {
		return nil
	}
	st.unseen = 0
	out := st.scan(false)
	if len(st.window) > st.lookBack+st.minScan {
		cut := len(st.window) - st.lookBack
		for cut < len(st.window) && st.window[cut]&0xC0 == 0x80 {
			cut++
		}
		st.window = st.window[cut:]
		st.base += cut
	}
	return out
}

// Close returns the findings still pending at the end of the stream.
func (st *Stream) Close() []Finding {
	if st.closed {
		return nil
	}
	st.closed = true
	return st.scan(true)
}

func (st *Stream) scan(final bool) []Finding {
	res := st.sc.Scan(st.window)
	var out []Finding
	for _, f := range res.Findings {
		if !final && f.End > len(st.window)-streamTail && f.Category != CategoryInjection && f.Category != CategoryJailbreak {
			continue
		}
		k := streamKey{f.Detector, f.Start + st.base, f.End + st.base}
		if f.Category == CategoryInjection || f.Category == CategoryJailbreak {
			k = streamKey{detector: f.Detector}
		}
		if st.seen[k] {
			continue
		}
		st.seen[k] = true
		f.Start += st.base
		f.End += st.base
		out = append(out, f)
	}
	return out
}

// DefaultHold is how many bytes a StreamMasker holds back before releasing them masked.
const DefaultHold = 256

// StreamMasker masks a stream: it releases the stream's text masked, holding back the last
// Hold bytes so that a value is masked whole before any of it leaves: a value up to
// Hold - Hold/8 - 16 bytes long (208 with DefaultHold). A longer one may have started to leave
// when it is found; its finding is still reported (callers then end
// the stream), and the part not yet released is masked.
type StreamMasker struct {
	st       *Stream
	m        *Masker
	hold     int
	mask     func(Finding) bool
	pending  string // received, not yet released; pending[0] is at stream offset released
	released int
	spans    []Finding // findings to mask that end after released
}

// NewStreamMasker masks the findings of st for which mask returns true (nil: all) with
// placeholders from m, holding back hold bytes (0: DefaultHold).
func NewStreamMasker(st *Stream, m *Masker, hold int, mask func(Finding) bool) *StreamMasker {
	if hold <= 0 {
		hold = DefaultHold
	}
	// The stream must rescan often enough that a value is found before the hold releases it.
	st.minScan = min(st.minScan, max(1, hold/8))
	return &StreamMasker{st: st, m: m, hold: hold, mask: mask}
}

// Write adds chunk and returns the masked text now released, and every new finding (masked
// or not).
func (sm *StreamMasker) Write(chunk string) (string, []Finding) {
	fs := sm.st.Write(chunk)
	sm.pending += chunk
	sm.add(fs)
	cut := len(sm.pending) - sm.hold
	return sm.release(cut), fs
}

// Close releases the rest of the stream, masked, and the last findings.
func (sm *StreamMasker) Close() (string, []Finding) {
	fs := sm.st.Close()
	sm.add(fs)
	return sm.release(len(sm.pending)), fs
}

func (sm *StreamMasker) add(fs []Finding) {
	for _, f := range fs {
		if (sm.mask == nil || sm.mask(f)) && f.End > sm.released {
			sm.spans = append(sm.spans, f)
		}
	}
}

// release emits pending[:cut] masked; a cut inside a span to mask moves to the span's start.
func (sm *StreamMasker) release(cut int) string {
	if cut <= 0 {
		return ""
	}
	for _, f := range sm.spans {
		s, e := f.Start-sm.released, f.End-sm.released
		if s < cut && e > cut {
			cut = max(s, 0)
		}
	}
	for cut > 0 && cut < len(sm.pending) && sm.pending[cut]&0xC0 == 0x80 {
		cut-- // never split a UTF-8 sequence
	}
	if cut <= 0 {
		return ""
	}
	var local []Finding
	keep := sm.spans[:0]
	for _, f := range sm.spans {
		g := f
		g.Start, g.End = max(f.Start-sm.released, 0), f.End-sm.released
		if g.End <= cut {
			local = append(local, g)
		} else {
			keep = append(keep, f)
		}
	}
	sm.spans = keep
	out := sm.m.Mask(sm.pending[:cut], local)
	sm.pending = sm.pending[cut:]
	sm.released += cut
	return out
}
