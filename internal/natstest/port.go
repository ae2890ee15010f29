package natstest

import (
	"os"
	"sync/atomic"
)

// seq hands out port candidates, starting at an offset per process so that
// test binaries running side by side rarely try the same ones.
type seq struct{ n atomic.Int64 }

func (s *seq) add() int64 { return s.n.Add(1) }

var portSeq = func() *seq {
	s := &seq{}
	s.n.Store(int64(os.Getpid()%80) * 100)
	return s
}()
