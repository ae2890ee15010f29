package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNonceTTL is used when Config.NonceTTL is zero. It matches the
// default of Kamailio's auth module: long enough for a 401/407 round trip,
// short enough that a captured request is not worth much for long.
const DefaultNonceTTL = 30 * time.Second

// Config configures a [Digest].
type Config struct {
	// Secret keys the nonce MAC. Instances that share it accept each
	// other's nonces. Empty means 32 random bytes (one instance only).
	Secret []byte
	// NonceTTL is how long a nonce stays fresh; zero means DefaultNonceTTL.
	NonceTTL time.Duration
	// Algorithms are offered in this order: "MD5", "MD5-sess", "SHA-256",
	// "SHA-256-sess" (case-insensitive). At least one is required.
	Algorithms []string
	// Now returns the current time; nil means time.Now. Tests inject it.
	Now func() time.Time
	// ReplayCacheSize is the number of accepted responses remembered to
	// refuse exact replays; zero disables the cache (see the package doc).
	ReplayCacheSize int
}

// Result is the outcome of [Digest.Verify].
type Result uint8

// Results of Verify. The zero value is Invalid so that a forgotten
// assignment fails closed.
const (
	// Invalid means the credentials must be refused (and challenged again).
	Invalid Result = iota
	// OK means the credentials prove knowledge of the password.
	OK
	// Stale means the response is right but the nonce is too old or was
	// already used: challenge again with stale=true.
	Stale
)

// String returns "ok", "stale" or "invalid", for logs and metric labels.
func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Stale:
		return "stale"
	default:
		return "invalid"
	}
}

// Stats are counters for metrics.
type Stats struct {
	// Replays is the number of exact replays refused by the replay cache.
	Replays uint64
	// ReplayCacheEntries is the number of fingerprints held (at most
	// Config.ReplayCacheSize).
	ReplayCacheEntries int
}

// Digest issues challenges and verifies credentials. It is safe for
// concurrent use.
type Digest struct {
	secret  []byte
	ttl     int64 // nanoseconds
	now     func() time.Time
	offered []algorithm
	allowed uint8    // bit set of offered algorithms
	tails   []string // per offered algorithm: `", opaque="...", algorithm=X, qop="auth"`
	opaque  string

	macs   sync.Pool // *macState
	ctr    atomic.Uint32
	replay *replayCache // nil when disabled
}

// macState is a reusable HMAC with scratch space, pooled so that minting and
// checking nonces allocates nothing.
type macState struct {
	h   hash.Hash
	in  []byte
	sum []byte
}

// New validates cfg and returns a Digest.
func New(cfg Config) (*Digest, error) {
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("auth: no digest algorithm configured")
	}
	if cfg.NonceTTL < 0 {
		return nil, fmt.Errorf("auth: negative nonce TTL %s", cfg.NonceTTL)
	}
	if cfg.ReplayCacheSize < 0 {
		return nil, fmt.Errorf("auth: negative replay cache size %d", cfg.ReplayCacheSize)
	}
	d := &Digest{
		ttl: int64(cfg.NonceTTL),
		now: cfg.Now,
	}
	if d.ttl == 0 {
		d.ttl = int64(DefaultNonceTTL)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.secret = append([]byte(nil), cfg.Secret...)
	if len(d.secret) == 0 {
		d.secret = make([]byte, 32)
		if _, err := rand.Read(d.secret); err != nil {
			return nil, fmt.Errorf("auth: random secret: %w", err)
		}
	}
	for _, name := range cfg.Algorithms {
		a, ok := parseAlgorithm(name)
		if !ok {
			return nil, fmt.Errorf("auth: unknown digest algorithm %q (want MD5, MD5-sess, SHA-256 or SHA-256-sess)", name)
		}
		if d.allowed&a.bit() != 0 {
			return nil, fmt.Errorf("auth: digest algorithm %q listed twice", name)
		}
		d.allowed |= a.bit()
		d.offered = append(d.offered, a)
	}
	d.macs.New = func() any {
		return &macState{h: hmac.New(sha256.New, d.secret)}
	}

	// The opaque value is constant so that any instance can check it; the
	// "o" prefix keeps its MAC input apart from nonce MAC inputs ("n").
	m := hmac.New(sha256.New, d.secret)
	m.Write([]byte("o:opaque"))
	d.opaque = base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
	for _, a := range d.offered {
		d.tails = append(d.tails, `", opaque="`+d.opaque+`", algorithm=`+a.String()+`, qop="auth"`)
	}
	if cfg.ReplayCacheSize > 0 {
		d.replay = newReplayCache(cfg.ReplayCacheSize)
	}
	return d, nil
}

// Challenge returns one WWW-Authenticate/Proxy-Authenticate header value per
// offered algorithm, in the configured order, all sharing one fresh nonce:
//
//	Digest realm="sip.local", nonce="...", opaque="...", algorithm=MD5, qop="auth"
//
// followed by ", stale=true" when stale is set. The values share one backing
// string, so the whole call costs two allocations.
func (d *Digest) Challenge(realm string, stale bool) []string {
	var nonce [nonceLen]byte
	d.mintNonce(nonce[:], realm, d.now().UnixNano())

	const (
		head   = `Digest realm="`
		mid    = `", nonce="`
		staleP = `, stale=true`
	)
	qrealm := realm
	if needsEscape(realm) {
		qrealm = escapeQuoted(realm)
	}
	n := 0
	for _, t := range d.tails {
		n += len(head) + len(qrealm) + len(mid) + nonceLen + len(t)
		if stale {
			n += len(staleP)
		}
	}
	var b strings.Builder
	b.Grow(n)
	var ends [len(algorithmNames) + 1]int // New refuses duplicates
	for i, t := range d.tails {
		b.WriteString(head)
		b.WriteString(qrealm)
		b.WriteString(mid)
		b.Write(nonce[:])
		b.WriteString(t)
		if stale {
			b.WriteString(staleP)
		}
		ends[i+1] = b.Len()
	}
	all := b.String()
	out := make([]string, len(d.tails))
	for i := range out {
		out[i] = all[ends[i]:ends[i+1]]
	}
	return out
}

// Verify checks credentials for a request with the given method against the
// expected realm and the user's password.
func (d *Digest) Verify(c Credentials, method, realm, password string) Result {
	return d.verify(c, method, realm, password, false)
}

// VerifyHA1 is Verify for stores that keep HA1 (see [HA1]) instead of the
// password. The HA1 must have been computed with the algorithm the client
// used (c.Algorithm); a -sess algorithm takes the plain HA1.
func (d *Digest) VerifyHA1(c Credentials, method, realm, ha1 string) Result {
	return d.verify(c, method, realm, ha1, true)
}

// HA1 returns the hex digest of "username:realm:password" with the hash of
// algorithm ("MD5", "SHA-256", or their -sess variants, which share it), or
// "" for an unknown algorithm.
func HA1(algorithm, username, realm, password string) string {
	a, ok := parseAlgorithm(algorithm)
	if !ok {
		return ""
	}
	var in [256]byte
	var out [64]byte
	return string(a.hexSum(out[:0], appendJoin(in[:0], username, realm, password)))
}

// Stats returns counters for metrics.
func (d *Digest) Stats() Stats {
	if d.replay == nil {
		return Stats{}
	}
	return d.replay.stats()
}

func (d *Digest) verify(c Credentials, method, realm, secret string, secretIsHA1 bool) Result {
	alg := algMD5 // RFC 7616 3.4: no algorithm parameter means MD5
	if c.Algorithm != "" {
		var ok bool
		if alg, ok = parseAlgorithm(c.Algorithm); !ok {
			return Invalid
		}
	}
	if d.allowed&alg.bit() == 0 || c.Realm != realm {
		return Invalid
	}
	if c.Opaque != "" && c.Opaque != d.opaque {
		return Invalid
	}
	var withQOP bool
	switch {
	case c.QOP == "":
		// RFC 2069 compatibility, only where it was ever defined.
		if alg != algMD5 {
			return Invalid
		}
	case strings.EqualFold(c.QOP, "auth"):
		if c.CNonce == "" || !isNC(c.NC) {
			return Invalid
		}
		withQOP = true
	default:
		return Invalid
	}
	issued, ok := d.checkNonce(c.Nonce, realm)
	if !ok {
		return Invalid
	}

	var want, got [32]byte
	n, ok := alg.response(want[:0], &c, method, secret, secretIsHA1, withQOP)
	if !ok || !decodeHex(got[:n], c.Response) || subtle.ConstantTimeCompare(want[:n], got[:n]) != 1 {
		return Invalid
	}

	if age := d.now().UnixNano() - issued; age > d.ttl || age < -d.ttl {
		return Stale
	}
	if d.replay != nil && d.replay.seen(c.Nonce, c.CNonce, c.NC, c.Response) {
		return Stale
	}
	return OK
}

// response writes the raw expected response digest into dst (cap >= 32)
// and returns its length (RFC 7616 section 3.4.1); ok is false when a
// stored HA1 has the wrong length for the algorithm.
func (a algorithm) response(dst []byte, c *Credentials, method, secret string, secretIsHA1, withQOP bool) (n int, ok bool) {
	var scratch [512]byte // inputs are short; longer ones spill to the heap
	var ha1b, ha2b [64]byte
	var ha1 []byte
	if secretIsHA1 {
		if len(secret) != a.hexLen() {
			return 0, false
		}
		ha1 = appendLowerHex(ha1b[:0], secret)
	} else {
		ha1 = a.hexSum(ha1b[:0], appendJoin(scratch[:0], c.Username, c.Realm, secret))
	}
	if a.sess() {
		in := append(scratch[:0], ha1...)
		in = appendJoin(append(in, ':'), c.Nonce, c.CNonce)
		ha1 = a.hexSum(ha1b[:0], in)
	}
	ha2 := a.hexSum(ha2b[:0], appendJoin(scratch[:0], method, c.URI))
	in := append(scratch[:0], ha1...)
	in = append(in, ':')
	if withQOP {
		in = appendJoin(in, c.Nonce, c.NC, c.CNonce, c.QOP, "")
	} else {
		in = appendJoin(in, c.Nonce, "")
	}
	in = append(in, ha2...)
	return a.sum(dst, in), true
}

// Nonce layout, see the package doc.
const (
	noncePayload = 12 // ts(8) || ctr(4)
	nonceMAC     = 16
	nonceRaw     = noncePayload + nonceMAC
	nonceLen     = (nonceRaw*8 + 5) / 6 // unpadded base64
)

func (d *Digest) mintNonce(dst []byte, realm string, now int64) {
	var raw [nonceRaw]byte
	binary.BigEndian.PutUint64(raw[0:8], uint64(now))
	binary.BigEndian.PutUint32(raw[8:12], d.ctr.Add(1))
	d.mac(raw[noncePayload:], raw[:noncePayload], realm)
	base64.RawURLEncoding.Encode(dst, raw[:])
}

// checkNonce returns the issue time of a nonce whose MAC matches realm.
func (d *Digest) checkNonce(nonce, realm string) (int64, bool) {
	if len(nonce) != nonceLen {
		return 0, false
	}
	var enc [nonceLen]byte
	copy(enc[:], nonce)
	var raw [nonceRaw]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], enc[:]); err != nil || n != nonceRaw {
		return 0, false
	}
	var mac [nonceMAC]byte
	d.mac(mac[:], raw[:noncePayload], realm)
	if !hmac.Equal(mac[:], raw[noncePayload:]) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(raw[0:8])), true
}

// mac writes HMAC-SHA256(secret, "n" || payload || realm) truncated to
// len(dst) into dst.
func (d *Digest) mac(dst, payload []byte, realm string) {
	m := d.macs.Get().(*macState)
	m.in = append(append(append(m.in[:0], 'n'), payload...), realm...)
	m.h.Reset()
	m.h.Write(m.in)
	m.sum = m.h.Sum(m.sum[:0])
	copy(dst, m.sum)
	d.macs.Put(m)
}

// algorithm is a digest algorithm we implement.
type algorithm uint8

const (
	algMD5 algorithm = iota
	algMD5Sess
	algSHA256
	algSHA256Sess
)

var algorithmNames = [...]string{"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"}

func parseAlgorithm(s string) (algorithm, bool) {
	for i, n := range algorithmNames {
		if strings.EqualFold(s, n) {
			return algorithm(i), true
		}
	}
	return 0, false
}

func (a algorithm) String() string { return algorithmNames[a] }
func (a algorithm) bit() uint8     { return 1 << a }
func (a algorithm) sess() bool     { return a == algMD5Sess || a == algSHA256Sess }
func (a algorithm) sha256() bool   { return a == algSHA256 || a == algSHA256Sess }

func (a algorithm) hexLen() int {
	if a.sha256() {
		return 2 * sha256.Size
	}
	return 2 * md5.Size
}

// sum appends the raw digest of in to dst (which must have room).
func (a algorithm) sum(dst, in []byte) int {
	if a.sha256() {
		s := sha256.Sum256(in)
		return copy(dst[:cap(dst)], s[:])
	}
	s := md5.Sum(in)
	return copy(dst[:cap(dst)], s[:])
}

// hexSum appends the lower-case hex digest of in to dst (cap >= 64).
func (a algorithm) hexSum(dst, in []byte) []byte {
	var raw [32]byte
	n := a.sum(raw[:0], in)
	return dst[:hex.Encode(dst[:2*n], raw[:n])]
}

// appendJoin appends parts separated by ':'.
func appendJoin(dst []byte, parts ...string) []byte {
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, ':')
		}
		dst = append(dst, p...)
	}
	return dst
}

func appendLowerHex(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// decodeHex decodes s into dst, which must be exactly len(s)/2 long; it
// accepts either case because some clients send upper-case responses.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isNC reports whether s is an 8LHEX nonce count (RFC 7616 3.4).
func isNC(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < 8; i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// needsEscape reports whether a realm must be rewritten to sit in a
// quoted-string.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' || isCTL(s[i]) {
			return true
		}
	}
	return false
}

// escapeQuoted escapes quotes and backslashes, and drops control
// characters, which no quoted-string may hold and which would let a realm
// taken from a request split the header.
func escapeQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case !isCTL(c):
			b.WriteByte(c)
		}
	}
	return b.String()
}
