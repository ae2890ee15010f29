// Command routr is the routr-go SIP edge: proxy, registrar and location
// server with call and registration events on NATS.
//
//	routr [serve]            run the edge (the default)
//	routr check              validate configuration and resources, then exit
//	routr events [flags]     print the events published on NATS
//	routr ctl <command>      manage resources and API keys
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/events"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		if err := serve(ctx, env, stderr); err != nil {
			fmt.Fprintln(stderr, "routr:", err)
			return 1
		}
		return 0
	case "check":
		return check(env, stdout, stderr)
	case "events":
		return watchEvents(ctx, args, env, stdout, stderr)
	case "ctl":
		return ctl(ctx, args, env, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "routr: unknown command %q\n%s\n", cmd, usage)
		return 2
	}
}

const usage = `usage:
  routr [serve]      run the SIP edge (settings from the environment, see docs/configuration.md)
  routr check        validate CONFIG_PATH and the resources (files or database), exit non-zero on any error
  routr events       print events from NATS (-url, -subject)
  routr ctl          manage resources and API keys (routr ctl help)`

// check validates the configuration and resources without serving.
func check(env func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(env)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	set, what, err := checkResources(context.Background(), cfg) // store.go
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s: %d domains, %d agents, %d peers, %d trunks, %d numbers\n",
		what, len(set.Domains()), len(set.Agents()), len(set.Peers()), len(set.Trunks()), len(set.Numbers()))
	return 0
}

// watchEvents subscribes to <subject>.> and prints what arrives.
func watchEvents(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", orDefault(env("NATS_PUBLISHER_URL"), events.DefaultNATSURL), "NATS server URL(s)")
	subject := fs.String("subject", orDefault(env("NATS_PUBLISHER_SUBJECT"), events.DefaultSubject), "base subject")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := events.Subscribe(ctx, *url, *subject+".>", stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "routr events:", err)
		return 1
	}
	return 0
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func newLogger(level slog.Level, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// shutdownGrace bounds how long a stopping edge waits to flush events.
const shutdownGrace = 5 * time.Second
