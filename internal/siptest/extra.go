package siptest

import (
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Bind attaches t to a Call built by hand (one that Dial did not start,
// such as a call from a trunk or one answered after a failover), so that
// its helpers can fail the test.
func (c *Call) Bind(t testing.TB) *Call {
	c.t = t
	return c
}

// FirstRequest waits up to d for a request of method at any of phones and
// returns it with the phone that got it. Phones that get nothing keep
// their messages for later.
func FirstRequest(method sip.RequestMethod, d time.Duration, phones ...*Phone) (*sip.Request, *Phone, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, p := range phones {
			select {
			case m := <-p.msgs:
				if req, ok := m.(*sip.Request); ok && req.Method == method {
					return req, p, nil
				}
			default:
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, nil, errors.New("siptest: no " + string(method) + " arrived")
}
