package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/routr-go/routr/internal/resources"
)

// notifyChannel is the PostgreSQL channel writes notify, with the new
// revision as payload.
const notifyChannel = "routr_resources"

// watcher is one Holder kept current by Watch.
type watcher struct {
	h   *resources.Holder
	rev uint64
}

// offer stores set in w's Holder if it is newer than what it holds.
// Callers hold db.mu, so that a slow Snapshot never replaces a newer Set
// that a write published meanwhile.
func (w *watcher) offer(set *resources.Set, rev uint64) bool {
	if rev <= w.rev && w.rev != 0 {
		return false
	}
	w.h.Store(set)
	w.rev = rev
	return true
}

// publish hands the Set a committed write built to this instance's
// watchers: the writer's own edge sees the change on its next request.
func (db *DB) publish(set *resources.Set, rev uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for w := range db.watchers {
		if w.offer(set, rev) {
			db.metrics.revision.Store(rev)
		}
	}
}

// Watch keeps h holding the current Snapshot until ctx ends or the DB is
// closed: a write through this DB reaches h before the write returns; a
// write by another instance arrives by PostgreSQL notification, or by
// polling the revision every PollInterval (SQLite, or while the
// notification connection is down). It loads the current snapshot first
// and returns its error if that fails; later failures are logged and
// retried. It returns nil when ctx ends or the DB is closed.
func (db *DB) Watch(ctx context.Context, h *resources.Holder) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-db.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	var listen *pgx.Conn
	defer func() {
		if listen != nil {
			listen.Close(context.WithoutCancel(ctx))
		}
	}()
	// Listen before the first snapshot, so that no change falls between.
	var lastConnectTry time.Time
	if db.pgConf != nil {
		lastConnectTry = time.Now()
		listen = db.listen(ctx)
	}
	set, rev, err := db.Snapshot(ctx)
	if err != nil {
		return err
	}
	w := &watcher{h: h}
	db.mu.Lock()
	w.offer(set, rev)
	db.metrics.revision.Store(max(db.metrics.revision.Load(), rev))
	db.watchers[w] = struct{}{}
	db.mu.Unlock()
	defer func() {
		db.mu.Lock()
		delete(db.watchers, w)
		db.mu.Unlock()
	}()

	poll := db.opts.PollInterval
	for {
		if db.pgConf != nil && listen == nil && time.Since(lastConnectTry) >= poll {
			lastConnectTry = time.Now()
			listen = db.listen(ctx)
		}
		if listen != nil {
			wctx, wcancel := context.WithTimeout(ctx, poll)
			_, err := listen.WaitForNotification(wctx)
			wcancel()
			if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				db.log.Warn("store: notification connection lost; polling", "error", err)
				listen.Close(context.WithoutCancel(ctx))
				listen = nil
			}
			// Notifications may come in bursts: one reload catches up with
			// all of them, since it reads the latest revision.
		} else {
			t := time.NewTimer(poll)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		db.refresh(ctx, w)
	}
}

// listen opens the notification connection; nil when it cannot.
func (db *DB) listen(ctx context.Context) *pgx.Conn {
	c, err := pgx.ConnectConfig(ctx, db.pgConf.Copy())
	if err != nil {
		if ctx.Err() == nil {
			db.log.Warn("store: cannot listen for changes; polling", "error", err)
		}
		return nil
	}
	if _, err := c.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		c.Close(context.WithoutCancel(ctx))
		if ctx.Err() == nil {
			db.log.Warn("store: LISTEN failed; polling", "error", err)
		}
		return nil
	}
	return c
}

// refresh reloads w's Holder if the stored revision moved past it.
func (db *DB) refresh(ctx context.Context, w *watcher) {
	rev, err := db.Revision(ctx)
	if err != nil {
		if ctx.Err() == nil && db.checkOpen() == nil {
			db.metrics.reloadErrors.Add(1)
			db.log.Warn("store: read revision", "error", err)
		}
		return
	}
	db.mu.Lock()
	cur := w.rev
	db.mu.Unlock()
	if rev == cur {
		return
	}
	set, rev, err := db.Snapshot(ctx)
	if err != nil {
		if ctx.Err() == nil && db.checkOpen() == nil {
			db.metrics.reloadErrors.Add(1)
			db.log.Error("store: reload resources; serving the last good set", "error", err)
		}
		return
	}
	db.mu.Lock()
	if w.offer(set, rev) {
		db.metrics.revision.Store(rev)
		db.metrics.reloads.Add(1)
		db.log.Info("store: resources reloaded", "revision", rev)
	}
	db.mu.Unlock()
}
