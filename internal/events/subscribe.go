package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Subscribe prints every message received on subject (wildcards allowed,
// e.g. "routr.>") to w, one line per event: the subject, a space and the
// JSON payload. url is a NATS_PUBLISHER_URL value. It waits for the server
// if it is not up yet, reconnects on its own, and returns nil when ctx
// ends. It backs `routr events`, a built-in `nats sub`.
func Subscribe(ctx context.Context, url, subject string, w io.Writer) error {
	urls, err := ParseNATSURLs(url)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("routr events"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.NoCallbacksAfterClientClose(),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", subject, err)
	}
	var line []byte
	for {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, nats.ErrSlowConsumer):
			continue // some messages were dropped because w is slow; go on
		case err != nil:
			return fmt.Errorf("receive on %q: %w", subject, err)
		}
		line = append(line[:0], m.Subject...)
		line = append(line, ' ')
		line = append(line, m.Data...)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
	}
}
