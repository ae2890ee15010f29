package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// The latency probe measures what the edge adds, at microsecond
// resolution (sipp's clock ticks every 4 ms here): during a step it sends
// an OPTIONS addressed to the edge every probeEvery, one at a time, and
// times the edge's 200. The OPTIONS takes the same path as every request
// (socket, sipgo, chain) and the edge answers it itself, so its time is the
// edge's own plus the loopback round trip under the step's load.
const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = time.Second
)

type probeStats struct {
	N    int     `json:"n"`
	Lost int     `json:"lost,omitempty"` // no answer within 1 s
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
}

// probe runs until stop is closed and returns its statistics.
func probe(edgePort int, stop <-chan struct{}) (*probeStats, error) {
	edge := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: edgePort}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	buf := make([]byte, 65535)
	var rtts []time.Duration
	lost := 0
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			st := &probeStats{N: len(rtts), Lost: lost}
			if len(rtts) > 0 {
				slices.Sort(rtts)
				st.P50 = float64(rtts[len(rtts)/2].Microseconds())
				st.P99 = float64(rtts[min(len(rtts)-1, len(rtts)*99/100)].Microseconds())
			}
			return st, nil
		case <-tick.C:
		}
		branch := fmt.Sprintf("z9hG4bK-probe-%d-%d", port, i)
		msg := fmt.Sprintf("OPTIONS sip:127.0.0.1:%[1]d SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:%[2]d;branch=%[3]s;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe%[2]d\r\nTo: <sip:127.0.0.1:%[1]d>\r\n"+
			"Call-ID: probe-%[2]d-%[4]d\r\nCSeq: %[4]d OPTIONS\r\nContent-Length: 0\r\n\r\n", edgePort, port, branch, i+1)
		t0 := time.Now()
		if _, err := c.WriteToUDP([]byte(msg), edge); err != nil {
			lost++
			continue
		}
		_ = c.SetReadDeadline(t0.Add(probeTimeout))
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				lost++
				break
			}
			// Late answers to earlier probes are skipped by branch.
			if strings.Contains(string(buf[:n]), branch) {
				rtts = append(rtts, time.Since(t0))
				break
			}
		}
	}
}
