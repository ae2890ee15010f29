package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestReadStat(t *testing.T) {
	dir := t.TempDir()
	header := "StartTime;ElapsedTime(C);OutgoingCall(P);OutgoingCall(C);IncomingCall(C);SuccessfulCall(C);FailedCall(C);FailedMaxUDPRetrans(C);FailedTimeoutOnRecv(C);Retransmissions(C);DeadCallMsgs(C);OutOfCallMsgs(C);FatalErrors(C);Warnings(C);"
	rows := []string{
		"x;00:00:01;100;100;0;90;0;0;0;0;0;0;0;0;",
		"x;00:00:02;100;200;0;190;0;0;0;1;0;0;0;0;",
		"x;00:00:03:500000;0;200;0;197;2;0;2;7;1;3;0;4;",
	}
	p := filepath.Join(dir, "s.csv")
	if err := os.WriteFile(p, []byte(header+"\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readStat(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Created != 200 || s.Successful != 197 || s.Failed != 2 || s.Retrans != 7 || s.DeadCall != 1 || s.OutOfCall != 3 || s.Warnings != 4 {
		t.Errorf("got %+v", s)
	}
	if s.FailedKinds["TimeoutOnRecv"] != 2 || len(s.FailedKinds) != 1 {
		t.Errorf("failed kinds %v", s.FailedKinds)
	}
	if s.ElapsedC != 3.5 || s.AllCreatedAt != 2 || s.PeakPerPeriod != 100 {
		t.Errorf("elapsed %v, all created at %v, peak %v", s.ElapsedC, s.AllCreatedAt, s.PeakPerPeriod)
	}
}

func TestPercentiles(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	s := percentiles(v)
	if s.N != 100 || s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 {
		t.Errorf("got %+v", s)
	}
	if s := percentiles([]float64{7}); s.P50 != 7 || s.P99 != 7 {
		t.Errorf("one sample: %+v", s)
	}
}

func TestReadRTTAndAchieved(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("Date_ms;response_time_ms;rtd_no\n")
	for i := range 201 {
		// one completion every 5 ms over 1 s: 200/s
		b.WriteString(strings.Join([]string{ftoa(float64(i) * 5), "4", "1"}, ";") + "\n")
		b.WriteString(strings.Join([]string{ftoa(float64(i) * 5), "0", "2"}, ";") + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "caller_123_rtt.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := readRTT(dir)
	if r[1].N != 201 || r[1].P99 != 4 || r[2].P50 != 0 {
		t.Errorf("got %+v", r)
	}
	if a := achievedRate(dir, 201, 10); a != 200 {
		t.Errorf("achieved %v, want 200", a)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

func TestErrorReasons(t *testing.T) {
	dir := t.TempDir()
	log := "The following events occurred:\n" +
		"2026-11-26\t12:33:23.277518\t1795696403.277518: Aborting call on unexpected message for Call-Id 'b10-10-21571@127.0.0.1': while expecting 'ACK' (index 3), received 'INVITE sip:u@h SIP/2.0\n" +
		"Via: x\n" +
		"'2026-11-26\t12:33:23.277562\t1795696403.277562: Aborting call on unexpected message for Call-Id 'b10-11-21571@127.0.0.1': while expecting 'ACK' (index 3), received 'INVITE sip:u@h SIP/2.0\n" +
		"2026-11-26\t12:33:31.541378\t1795696411.541378: Call-Id: b10-10-21571@127.0.0.1, receive timeout on message bench caller:11 without label to jump to (ontimeout attribute): aborting call\n"
	p := filepath.Join(dir, "e.log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got := errorReasons(p, 5)
	if len(got) != 2 || !strings.HasPrefix(got[0], "2× Aborting call on unexpected message for Call-Id <call>: while expecting 'ACK'") {
		t.Errorf("got %q", got)
	}
}

func TestStepOf(t *testing.T) {
	for key, want := range map[string]string{"b12-3-456@127.0.0.1": "b12", "1-456@127.0.0.1": "", "": "", "b7": ""} {
		if got := stepOf(key); got != want {
			t.Errorf("stepOf(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestCounterStats(t *testing.T) {
	c := &counter{steps: map[string]*stepCount{}}
	msg := func(body, id string) *nats.Msg {
		m := nats.NewMsg("routr.x")
		m.Data = []byte(body)
		m.Header.Set("Routr-Event-Id", id)
		return m
	}
	c.record(evStarted, msg(`{"callId":"b3-1-9@h"}`, "e1"))
	c.record(evStarted, msg(`{"callId":"b3-2-9@h"}`, "e2"))
	c.record(evStarted, msg(`{"callId":"b3-2-9@h"}`, "e3")) // a second event for call 2
	c.record(evStarted, msg(`{"callId":"b3-2-9@h"}`, "e3")) // the same event again
	c.record(evStarted, msg(`{"callId":"b3-4-9@h"}`, "e4")) // a call sipp did not complete
	c.record(evRegistered, msg(`{"aor":"sip:u@h","extraHeaders":{"X-Bench-Id":"b3-7-9@h"}}`, "e5"))
	c.record(evStarted, msg(`{"callId":"1-9@h"}`, "e6")) // untagged

	s := c.stats("b3", evStarted, map[string]bool{"b3-1-9@h": true, "b3-2-9@h": true, "b3-3-9@h": true}, 3)
	want := eventStats{Expected: 3, Received: 5, Unique: 3, Lost: 1, Duplicated: 2, SameID: 1, Extra: 1, LostSample: []string{"b3-3-9@h"}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	if s := c.stats("b3", evRegistered, map[string]bool{"b3-7-9@h": true}, 1); s.Lost != 0 || s.Unique != 1 || s.Duplicated != 0 {
		t.Errorf("registered: %+v", s)
	}
	if s := c.stats("b3", evEnded, nil, 2); s.Lost != 2 {
		t.Errorf("ended: %+v", s)
	}
	if n, _ := c.total(""); n != 1 {
		t.Errorf("untagged: %d", n)
	}
}
