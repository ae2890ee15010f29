// Package auth provides server-side SIP digest authentication (RFC 2617,
// RFC 7616, RFC 8760) with stateless nonces.
//
// # Flow
//
// The edge answers an unauthenticated request with one
// WWW-Authenticate/Proxy-Authenticate header per value of
// [Digest.Challenge]; when the request comes back it parses the
// Authorization/Proxy-Authorization value with [ParseCredentials], looks up
// the password (or a stored HA1) and calls [Digest.Verify] (or
// [Digest.VerifyHA1]). [Stale] means "right password, old nonce": challenge
// again with stale=true so the client retries without asking its user.
//
// # Nonces
//
// Nonces carry their own proof so that nothing is stored per challenge and
// every edge instance that shares Config.Secret accepts the others' nonces:
//
//	nonce = base64url(ts || ctr || mac)                         38 characters
//	ts    = issue time, Unix nanoseconds, 8 bytes big-endian
//	ctr   = per-process counter, 4 bytes, so that two challenges issued in
//	        the same nanosecond still differ
//	mac   = HMAC-SHA256(secret, "n" || ts || ctr || realm)[:16]
//
// Verify recomputes the MAC with the realm it is asked to check, so a nonce
// issued for one realm is [Invalid] in any other. A nonce whose MAC is good
// but which is older than Config.NonceTTL (or that far in the future, which
// only clock skew between instances produces) is [Stale], and only if the
// response is otherwise correct, as RFC 7616 section 3.3 asks.
//
// The opaque parameter is a constant derived from the secret; a client that
// returns a different one is refused, one that omits it (some old phones) is
// not, because opaque adds no security here.
//
// # Replay
//
// A stateless nonce can be replayed for as long as it is fresh: whoever
// captures a request can resend it within NonceTTL. Keep NonceTTL short and
// use TLS where this matters. Config.ReplayCacheSize enables a fixed-size
// ring of recently accepted (nonce, cnonce, nc, response) fingerprints that
// turns an exact replay into [Stale] (a fresh challenge the attacker cannot
// answer, and that an honest client reusing a nonce answers transparently).
// The ring is bounded, so at R accepted requests per second it protects a
// window of min(NonceTTL, ReplayCacheSize/R); [Digest.Stats] exposes the
// number of replays refused. The nonce count is otherwise not tracked: a
// stateless server cannot tell the order of nc values.
//
// # Algorithms
//
// MD5, SHA-256 and their -sess variants (RFC 7616 section 3.4.2) can be
// offered, in the order operators choose: RFC 8760 asks for the preferred one
// first, and many deployed phones only answer the first challenge and only
// with MD5. The -sess variants are supported because they cost two lines and
// some stores hand out session keys; they require qop=auth. qop=auth-int is
// not offered. A response without qop (RFC 2069) is accepted only for plain
// MD5, for old user agents.
//
// Verify does not compare the credentials' uri with the Request-URI nor the
// username with the From/To user: that is the caller's policy.
package auth
