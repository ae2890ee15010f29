package edge

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSalvage reads arbitrary bytes as salvage does for a message sipgo
// rejected: it must not panic, and a response formed from what it found
// must be one well-framed SIP response whose header lines carry no stray
// CR or LF (nothing of the input can inject a header or a second message).
func FuzzSalvage(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/rfc4475/*.dat")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, true)
		}
	}
	f.Add([]byte(badRequest("UDP", "x")), false)
	f.Fuzz(func(t *testing.T, msg []byte, datagram bool) {
		s := salvage(msg, datagram)
		if s.code != 0 && s.code != 400 && s.code != 416 {
			t.Fatalf("code %d", s.code)
		}
		if !s.answerable() {
			return
		}
		res := s.response(400, "Bad Request ("+s.problem+")", "edge", "tag1")
		head, rest, ok := bytes.Cut(res, []byte("\r\n\r\n"))
		if !ok || len(rest) != 0 {
			t.Fatalf("not one message: %q", res)
		}
		lines := strings.Split(string(head), "\r\n")
		if !strings.HasPrefix(lines[0], "SIP/2.0 400 ") {
			t.Fatalf("status line %q", lines[0])
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") || l == "" {
				t.Fatalf("bad header line %q in %q", l, res)
			}
		}
	})
}
