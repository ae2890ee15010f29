package events

import (
	"strconv"
	"time"
)

// CallStart is what a call.started event says.
type CallStart struct {
	CallID string
	// From and To are the From and To URIs (or header values) of the
	// INVITE, as received; they are written normalised (NormalizeURI).
	From, To string
	// StartTime is when the initial INVITE was forwarded.
	StartTime time.Time
	// ExtraHeaders are headers of the INVITE, as on the wire; it may hold
	// all of them: only those named X-... that carry no credential are
	// written.
	ExtraHeaders []Header
	// Metadata is the extended metadata of the caller (Agent, Peer) or of
	// the Number called, written at the top level as Routr does. A key that
	// is also a compat field (callId, from, to, startTime, extraHeaders) is
	// left out: compat fields win. Keys that look like credentials
	// (IsCredentialName) are left out at every depth.
	Metadata map[string]any
}

// callStartedFields are the compat fields of call.started; metadata never
// overwrites them.
var callStartedFields = []string{"callId", "from", "to", "startTime", "extraHeaders"}

// CallStarted builds a call.started event:
//
//	{"callId":…,"from":"sip:u@h","to":"sip:u@h","startTime":…,"extraHeaders":{…},<metadata>…}
func CallStarted(s CallStart) Event {
	from, to := NormalizeURI(s.From), NormalizeURI(s.To)
	b := make([]byte, 0, 112+len(s.CallID)+len(from)+len(to)+headersSize(s.ExtraHeaders)+48*len(s.Metadata))
	b = append(b, `{"callId":`...)
	b = appendString(b, s.CallID)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"to":`...)
	b = appendString(b, to)
	b = append(b, `,"startTime":"`...)
	b = appendTime(b, s.StartTime)
	b = append(b, `","extraHeaders":`...)
	b = appendExtraHeaders(b, s.ExtraHeaders)
	if len(s.Metadata) > 0 {
		b, _ = appendMembers(b, s.Metadata, callStartedFields, 1, false)
	}
	b = append(b, '}')
	return Event{ID: newID(s.StartTime), Type: TypeCallStarted, Time: s.StartTime, Body: b}
}

// CallAnswer is what a call.answered event says.
type CallAnswer struct {
	CallID   string
	From, To string // normalised like CallStart's
	// StartTime is the call's startTime; AnswerTime when the 2xx to its
	// initial INVITE was relayed.
	StartTime, AnswerTime time.Time
}

// CallAnswered builds a call.answered event (beyond):
//
//	{"callId":…,"from":…,"to":…,"startTime":…,"answerTime":…}
func CallAnswered(a CallAnswer) Event {
	from, to := NormalizeURI(a.From), NormalizeURI(a.To)
	b := make([]byte, 0, 112+len(a.CallID)+len(from)+len(to))
	b = append(b, `{"callId":`...)
	b = appendString(b, a.CallID)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"to":`...)
	b = appendString(b, to)
	b = append(b, `,"startTime":"`...)
	b = appendTime(b, a.StartTime)
	b = append(b, `","answerTime":"`...)
	b = appendTime(b, a.AnswerTime)
	b = append(b, `"}`...)
	return Event{ID: newID(a.AnswerTime), Type: TypeCallAnswered, Time: a.AnswerTime, Body: b}
}

// CallEnd is what a call.ended event says.
type CallEnd struct {
	CallID   string
	From, To string // normalised like CallStart's
	// StartTime is the call's startTime; AnswerTime is zero when the call
	// was never answered; EndTime is when it ended.
	StartTime, AnswerTime, EndTime time.Time
	// HangupCause is written as is; when empty, HangupCause(SIPCode).
	HangupCause string
	// SIPCode is the SIP status that ended the call (the final response to
	// the INVITE, 487 after a CANCEL, the BYE's final response, 408 for a
	// timeout, 503 for a transport error); 0 when no SIP status did (the
	// call exceeded its maximum duration).
	SIPCode int
	// ExtraHeaders are headers of the message that ended the call; only
	// X- ones without credentials are written, as for CallStart.
	ExtraHeaders []Header
}

// CallEnded builds a call.ended event: the compat fields, then from, to,
// sipCode, startTime, answerTime (only when answered) and duration (whole
// seconds from answer to end, 0 when not answered):
//
//	{"callId":…,"endTime":…,"hangupCause":…,"extraHeaders":{…},"from":…,"to":…,"sipCode":486,"startTime":…,"duration":0}
func CallEnded(e CallEnd) Event {
	from, to := NormalizeURI(e.From), NormalizeURI(e.To)
	cause := e.HangupCause
	if cause == "" {
		cause = HangupCause(e.SIPCode)
	}
	b := make([]byte, 0, 272+len(e.CallID)+len(from)+len(to)+headersSize(e.ExtraHeaders))
	b = append(b, `{"callId":`...)
	b = appendString(b, e.CallID)
	b = append(b, `,"endTime":"`...)
	b = appendTime(b, e.EndTime)
	b = append(b, `","hangupCause":`...)
	b = appendString(b, cause)
	b = append(b, `,"extraHeaders":`...)
	b = appendExtraHeaders(b, e.ExtraHeaders)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"to":`...)
	b = appendString(b, to)
	b = append(b, `,"sipCode":`...)
	b = strconv.AppendInt(b, int64(e.SIPCode), 10)
	b = append(b, `,"startTime":"`...)
	b = appendTime(b, e.StartTime)
	b = append(b, '"')
	var duration int64
	if !e.AnswerTime.IsZero() {
		b = append(b, `,"answerTime":"`...)
		b = appendTime(b, e.AnswerTime)
		b = append(b, '"')
		// From the millisecond-truncated times that are written, so a
		// consumer computing it from the payload gets the same number.
		if ms := e.EndTime.UnixMilli() - e.AnswerTime.UnixMilli(); ms > 0 {
			duration = ms / 1000
		}
	}
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, duration, 10)
	b = append(b, '}')
	return Event{ID: newID(e.EndTime), Type: TypeCallEnded, Time: e.EndTime, Body: b}
}

// EndpointRegistered builds an endpoint.registered event for a binding the
// registrar stored at time at: aor is normalised (NormalizeURI), expires is
// the number of seconds granted, h the headers of the REGISTER (only X-
// ones without credentials are written):
//
//	{"aor":"sip:u@h","registeredAt":…,"expires":3600,"extraHeaders":{…}}
func EndpointRegistered(aor string, expires int, h []Header, at time.Time) Event {
	aor = NormalizeURI(aor)
	b := make([]byte, 0, 104+len(aor)+headersSize(h))
	b = append(b, `{"aor":`...)
	b = appendString(b, aor)
	b = append(b, `,"registeredAt":"`...)
	b = appendTime(b, at)
	b = append(b, `","expires":`...)
	b = strconv.AppendInt(b, int64(expires), 10)
	b = append(b, `,"extraHeaders":`...)
	b = appendExtraHeaders(b, h)
	b = append(b, '}')
	return Event{ID: newID(at), Type: TypeEndpointRegistered, Time: at, Body: b}
}

// Reasons written in endpoint.unregistered.
const (
	// ReasonUnregister: the endpoint removed its binding (Expires: 0).
	ReasonUnregister = "unregister"
	// ReasonExpired: the binding expired without being refreshed.
	ReasonExpired = "expired"
)

// EndpointUnregistered builds an endpoint.unregistered event (beyond) for a
// binding removed at time at; reason is ReasonUnregister or ReasonExpired:
//
//	{"aor":"sip:u@h","unregisteredAt":…,"reason":"expired"}
func EndpointUnregistered(aor, reason string, at time.Time) Event {
	aor = NormalizeURI(aor)
	b := make([]byte, 0, 72+len(aor)+len(reason))
	b = append(b, `{"aor":`...)
	b = appendString(b, aor)
	b = append(b, `,"unregisteredAt":"`...)
	b = appendTime(b, at)
	b = append(b, `","reason":`...)
	b = appendString(b, reason)
	b = append(b, '}')
	return Event{ID: newID(at), Type: TypeEndpointUnregistered, Time: at, Body: b}
}

// appendExtraHeaders appends the extraHeaders object: every X- header
// without credentials, name as on the wire; when a name repeats, the last
// value wins (as in Routr), so the object never has duplicate keys.
func appendExtraHeaders(b []byte, hs []Header) []byte {
	b = append(b, '{')
	n := 0
	for i := range hs {
		if HasXPrefix(hs[i].Name) {
			n++
		}
	}
	var last map[string]int
	if n > 16 { // quadratic below, a map above
		last = make(map[string]int, n)
		for i := range hs {
			if isExtraHeader(hs[i].Name) {
				last[hs[i].Name] = i
			}
		}
	}
	first := true
	for i := range hs {
		h := &hs[i]
		if !isExtraHeader(h.Name) {
			continue
		}
		if last != nil {
			if last[h.Name] != i {
				continue
			}
		} else if repeatedAfter(hs, i) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, h.Name)
		b = append(b, ':')
		b = appendString(b, h.Value)
	}
	return append(b, '}')
}

func repeatedAfter(hs []Header, i int) bool {
	for j := i + 1; j < len(hs); j++ {
		if hs[j].Name == hs[i].Name {
			return true
		}
	}
	return false
}

// headersSize estimates the encoded size of the X- headers in hs.
func headersSize(hs []Header) int {
	n := 0
	for i := range hs {
		if HasXPrefix(hs[i].Name) {
			n += len(hs[i].Name) + len(hs[i].Value) + 6
		}
	}
	return n
}
