package events

// Hangup causes written in call.ended. The compat ones come from Routr's
// table; CauseAllottedTimeout and CauseSystemShutdown are ours (the names
// FreeSWITCH uses for a call that exceeded its allotted time, and for one
// still up when the switch stopped).
const (
	CauseNormalClearing      = "NORMAL_CLEARING"
	CauseCallRejected        = "CALL_REJECTED"
	CauseUnallocated         = "UNALLOCATED"
	CauseNoUserResponse      = "NO_USER_RESPONSE"
	CauseNoRouteDestination  = "NO_ROUTE_DESTINATION"
	CauseNoAnswer            = "NO_ANSWER"
	CauseUserBusy            = "USER_BUSY"
	CauseNotAcceptableHere   = "NOT_ACCEPTABLE_HERE"
	CauseInvalidNumberFormat = "INVALID_NUMBER_FORMAT"
	CauseServiceUnavailable  = "SERVICE_UNAVAILABLE"
	CauseUnknown             = "UNKNOWN"
	CauseAllottedTimeout     = "ALLOTTED_TIMEOUT"
	CauseSystemShutdown      = "SYSTEM_SHUTDOWN"
)

// HangupCause maps a SIP final status code to the hangupCause of call.ended,
// as the contract's table (Routr's) does; any code not in it is UNKNOWN.
func HangupCause(code int) string {
	switch code {
	case 200, 487:
		return CauseNormalClearing
	case 401, 403, 407, 603:
		return CauseCallRejected
	case 404, 485, 604:
		return CauseUnallocated
	case 408:
		return CauseNoUserResponse
	case 420:
		return CauseNoRouteDestination
	case 480, 483:
		return CauseNoAnswer
	case 484:
		return CauseInvalidNumberFormat
	case 486, 600:
		return CauseUserBusy
	case 488:
		return CauseNotAcceptableHere
	case 503:
		return CauseServiceUnavailable
	}
	return CauseUnknown
}

// HangupCauses lists every cause call.ended can carry.
func HangupCauses() []string {
	return []string{
		CauseNormalClearing, CauseCallRejected, CauseUnallocated, CauseNoUserResponse,
		CauseNoRouteDestination, CauseNoAnswer, CauseUserBusy, CauseNotAcceptableHere,
		CauseInvalidNumberFormat, CauseServiceUnavailable, CauseUnknown, CauseAllottedTimeout,
		CauseSystemShutdown,
	}
}
