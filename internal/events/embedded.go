package events

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultEmbeddedAddr is where the embedded NATS server listens by default.
const DefaultEmbeddedAddr = "127.0.0.1:4222"

// EmbeddedOptions configures an in-process NATS server.
type EmbeddedOptions struct {
	// Addr is the host:port clients connect to; default
	// DefaultEmbeddedAddr. Port 0 picks a free port (for tests).
	Addr string
	// StoreDir holds JetStream's data; empty means a temporary directory
	// removed by Close. Give the same directory to keep a stream across
	// restarts.
	StoreDir string
	// NoJetStream turns JetStream off (it is on by default).
	NoJetStream bool
	// ServerName names the server; default "routr".
	ServerName string
	// Logger receives the server's notices, warnings and errors; nil
	// discards them.
	Logger *slog.Logger
}

// EmbeddedServer is a NATS server running inside the process, for a single
// binary deployment and for tests.
type EmbeddedServer struct {
	s       *server.Server
	tempDir string
}

// StartEmbedded starts a NATS server (nats-server/v2) in the process and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*EmbeddedServer, error) {
	if o.Addr == "" {
		o.Addr = DefaultEmbeddedAddr
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded NATS address %q: bad port", o.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if o.ServerName == "" {
		o.ServerName = "routr"
	}
	e := &EmbeddedServer{}
	if !o.NoJetStream && o.StoreDir == "" {
		dir, err := os.MkdirTemp("", "routr-nats-")
		if err != nil {
			return nil, fmt.Errorf("embedded NATS store: %w", err)
		}
		o.StoreDir, e.tempDir = dir, dir
	}
	opts := &server.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  !o.NoJetStream,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      o.Logger == nil,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		e.removeTemp()
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(serverLogger{o.Logger}, false, false, false)
	}
	e.s = s
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		e.removeTemp()
		return nil, errors.New("embedded NATS: not ready within 10s (is the port in use?)")
	}
	return e, nil
}

// InProcessConn returns a new in-memory client connection to the server
// (nats.InProcessServer): no sockets, no system calls per message.
func (e *EmbeddedServer) InProcessConn() (net.Conn, error) { return e.s.InProcessConn() }

// ClientURL returns the URL clients connect to, e.g. nats://127.0.0.1:4222.
func (e *EmbeddedServer) ClientURL() string { return e.s.ClientURL() }

// Close shuts the server down, waits for it, and removes its temporary
// store directory if it made one.
func (e *EmbeddedServer) Close() {
	e.s.Shutdown()
	e.s.WaitForShutdown()
	e.removeTemp()
}

func (e *EmbeddedServer) removeTemp() {
	if e.tempDir != "" {
		os.RemoveAll(e.tempDir)
	}
}

// serverLogger forwards the server's log to slog; debug and trace output is
// dropped.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(string, ...any)           {}
func (s serverLogger) Tracef(string, ...any)           {}
