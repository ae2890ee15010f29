package edge

import (
	"bytes"
	"runtime"
	"time"
)

// sipgo handles every message it reads on a goroutine of its own (the
// transaction layer's handleRequestBackground or handleResponseBackground),
// and one still running when the edge stops may open a socket after the
// user agent has closed: a UDP request read just before its listener
// closed finds the listener gone from sipgo's connection pool, so sipgo
// opens a new UDP socket to answer, and that socket's reader never ends;
// a handler of ours may likewise send a request from a new socket. Those
// sockets land in sipgo's pools, so once no such goroutine is left,
// clearing the pools again closes them and ends their readers.
//
// A goroutine not yet started shows only the wrapper the go statement
// made (handleMessage.gowrap1), so the line naming its creator is what
// identifies them all.
var sipgoHandlerFrames = [][]byte{
	[]byte("created by github.com/emiago/sipgo/sip.(*TransactionLayer).handleMessage"),
	[]byte("sip.(*TransactionLayer).handleRequestBackground"),
	[]byte("sip.(*TransactionLayer).handleResponseBackground"),
}

// handlerWait bounds how long closing waits for sipgo's message
// goroutines: with the user agent closed, their transactions have ended
// and they return at once; a handler stuck longer (a slow location
// store) is not waited for.
const handlerWait = 5 * time.Second

// maxStackDump bounds the memory the goroutine dump may take; past it
// (hundreds of thousands of goroutines still alive) closing does not wait.
const maxStackDump = 64 << 20

// finishHandlers waits, at most handlerWait, for sipgo's message
// goroutines to return, then closes whatever sockets they opened after
// the user agent closed. It runs after the listeners and the user agent
// are closed, so no new message goroutine can start.
//
// sipgo offers no count of its goroutines, so they are found in the
// goroutine stacks; this runs once, at shutdown. In a process with more
// than one edge (tests) it waits for all of them, which is only slower.
func (s *Server) finishHandlers() {
	deadline := time.Now().Add(handlerWait)
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			if len(buf) >= maxStackDump {
				s.log.Warn("closing: too many goroutines to wait for sipgo's message handlers")
				break
			}
			buf = make([]byte, 2*len(buf))
			continue
		}
		if !handlersRunning(buf[:n]) {
			break
		}
		if time.Now().After(deadline) {
			s.log.Warn("closing: sipgo message handlers still running", "waited", handlerWait)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	tl := s.ua.TransportLayer()
	for _, network := range []string{"udp", "tcp", "tls", "ws", "wss"} {
		if p := tl.Pool(network); p != nil {
			_ = p.Clear()
		}
	}
}

// handlersRunning reports whether any goroutine in the dump is one of
// sipgo's message goroutines. Only a goroutine's own frames count, not the
// ancestors GODEBUG=tracebackancestors appends.
func handlersRunning(dump []byte) bool {
	for g := range bytes.SplitSeq(dump, []byte("\n\n")) {
		if i := bytes.Index(g, []byte("[originating from goroutine")); i >= 0 {
			g = g[:i]
		}
		for _, f := range sipgoHandlerFrames {
			if bytes.Contains(g, f) {
				return true
			}
		}
	}
	return false
}
