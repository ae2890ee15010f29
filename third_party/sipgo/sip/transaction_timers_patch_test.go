package sip

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/emiago/sipgo/fakes"
	"github.com/stretchr/testify/require"
)

// routr-go patch: a terminated server INVITE transaction that answered
// 2xx stops Timer L, and a terminated client INVITE transaction that got
// a 2xx stops Timer M; a running timer kept the transaction, its request
// and its response reachable until it fired.
func TestTerminateStopsAcceptedTimers(t *testing.T) {
	req, _, _ := testCreateInvite(t, "sip:127.0.0.99:5060", "UDP", "127.0.0.2:5060")
	conn := func() *UDPConnection {
		return &UDPConnection{PacketConn: &fakes.UDPConn{
			Reader:  bytes.NewBuffer(nil),
			Writers: map[string]io.Writer{"127.0.0.2:5060": bytes.NewBuffer(nil), "127.0.0.99:5060": bytes.NewBuffer(nil)},
		}}
	}

	t.Run("ServerTimerL", func(t *testing.T) {
		tx := NewServerTx("l", req, conn(), slog.Default())
		require.NoError(t, tx.Init())
		require.NoError(t, tx.Respond(NewResponseFromRequest(req, StatusOK, "OK", nil)))
		tx.mu.Lock()
		started := tx.timer_l != nil
		tx.mu.Unlock()
		require.True(t, started, "Timer L runs in Accepted")
		tx.Terminate()
		tx.mu.Lock()
		defer tx.mu.Unlock()
		require.Nil(t, tx.timer_l, "Timer L after Terminate")
	})

	t.Run("ClientTimerM", func(t *testing.T) {
		tx := NewClientTx("m", req, conn(), slog.Default())
		require.NoError(t, tx.Init())
		go tx.Receive(NewResponseFromRequest(req, StatusOK, "OK", nil))
		<-tx.Responses()
		tx.mu.Lock()
		started := tx.timer_m != nil
		tx.mu.Unlock()
		require.True(t, started, "Timer M runs in Accepted")
		tx.Terminate()
		tx.mu.Lock()
		defer tx.mu.Unlock()
		require.Nil(t, tx.timer_m, "Timer M after Terminate")
	})
}
