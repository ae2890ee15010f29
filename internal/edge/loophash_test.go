package edge

import (
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// loopHash must stay what it was with hash/fnv: edges that share dialogs
// compare each other's branches.
func TestLoopHashMatchesFNV(t *testing.T) {
	raw := "INVITE sip:+15550001@trunk.test;user=phone SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n" +
		"From: <sip:1001@sip.local>;tag=ft\r\nTo: <sip:+15550001@trunk.test>;tag=tt\r\n" +
		"Call-ID: c-1\r\nCSeq: 314 INVITE\r\nProxy-Require: foo\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	h := fnv.New64a()
	h.Write([]byte(req.Recipient.String()))
	h.Write([]byte("ft"))
	h.Write([]byte{0})
	h.Write([]byte("tt"))
	h.Write([]byte{0})
	h.Write([]byte("c-1"))
	h.Write([]byte(strconv.Itoa(314)))
	h.Write([]byte("foo"))
	want := hex.EncodeToString(h.Sum(nil))[:8]
	if got := loopHash(req); got != want {
		t.Fatalf("loopHash = %s, want %s", got, want)
	}
}
