package main

import (
	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/edge"
)

// edgeLimits maps the SIP_MAX_* and SIP_CONNECTION_* settings onto the
// edge's options; zero values leave the edge's defaults.
func edgeLimits(l config.Limits) (edge.Limits, edge.ConnLimits) {
	return edge.Limits{
			MaxMessageSize:  l.MaxMessageSize,
			MaxTransactions: l.MaxTransactions,
			RetryAfter:      l.RetryAfter,
		}, edge.ConnLimits{
			Max:              l.MaxConnections,
			MaxPerSource:     l.MaxConnectionsPerSource,
			IdleTimeout:      l.ConnectionIdleTimeout,
			WriteTimeout:     l.ConnectionWriteTimeout,
			HandshakeTimeout: l.ConnectionHandshakeTimeout,
		}
}
