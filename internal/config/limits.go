package config

import "time"

// Limits are the edge's caps on what the network can make it hold
// (SIP_MAX_* and SIP_CONNECTION_* variables). Zero values mean the edge's
// defaults, listed in the package doc.
type Limits struct {
	// MaxMessageSize is the largest SIP message taken, in bytes
	// (SIP_MAX_MESSAGE_SIZE).
	MaxMessageSize int
	// MaxTransactions caps the server transactions alive at once
	// (SIP_MAX_TRANSACTIONS); RetryAfter is the Retry-After of the 503
	// beyond it (SIP_OVERLOAD_RETRY_AFTER).
	MaxTransactions int
	RetryAfter      time.Duration
	// MaxConnections and MaxConnectionsPerSource cap accepted TCP, TLS,
	// WS and WSS connections in total and per source IP address
	// (SIP_MAX_CONNECTIONS, SIP_MAX_CONNECTIONS_PER_SOURCE).
	MaxConnections          int
	MaxConnectionsPerSource int
	// ConnectionIdleTimeout, ConnectionWriteTimeout and
	// ConnectionHandshakeTimeout bound an accepted connection's silence,
	// one write, and the wait for its first bytes
	// (SIP_CONNECTION_IDLE_TIMEOUT, SIP_CONNECTION_WRITE_TIMEOUT,
	// SIP_CONNECTION_HANDSHAKE_TIMEOUT).
	ConnectionIdleTimeout      time.Duration
	ConnectionWriteTimeout     time.Duration
	ConnectionHandshakeTimeout time.Duration
}

// applyLimitsEnv reads the variables of Limits.
func applyLimitsEnv(e *envReader, l *Limits) {
	// 256 bytes cannot hold a useful request; 64 KiB is the most sipgo's
	// WebSocket reader takes.
	if e.positive("SIP_MAX_MESSAGE_SIZE", 65535, &l.MaxMessageSize); l.MaxMessageSize != 0 && l.MaxMessageSize < 256 {
		e.errorf("SIP_MAX_MESSAGE_SIZE", "%d is less than 256", l.MaxMessageSize)
		l.MaxMessageSize = 0
	}
	e.positive("SIP_MAX_TRANSACTIONS", 1<<30, &l.MaxTransactions)
	e.duration("SIP_OVERLOAD_RETRY_AFTER", time.Second, true, &l.RetryAfter)
	e.positive("SIP_MAX_CONNECTIONS", 1<<24, &l.MaxConnections)
	e.positive("SIP_MAX_CONNECTIONS_PER_SOURCE", 1<<24, &l.MaxConnectionsPerSource)
	e.duration("SIP_CONNECTION_IDLE_TIMEOUT", time.Second, false, &l.ConnectionIdleTimeout)
	e.duration("SIP_CONNECTION_WRITE_TIMEOUT", 100*time.Millisecond, false, &l.ConnectionWriteTimeout)
	e.duration("SIP_CONNECTION_HANDSHAKE_TIMEOUT", 100*time.Millisecond, false, &l.ConnectionHandshakeTimeout)
}
