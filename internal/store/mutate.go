package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/routr-go/routr/internal/resources"
)

// state is every stored resource as a write transaction sees it, plus the
// changes the write makes.
type state struct {
	db    *DB
	rev   int64 // the revision this write creates
	now   int64
	all   []entry // in creation order; changed in place by put and del
	byRef map[string]*entry

	// built are the resources to validate: the caller's values for the
	// ones written (so that problems keep their file and line), decoded
	// rows for the others.
	built   map[string]resources.Resource
	puts    []*entry
	deletes []string
}

// put stores r (new or replacing the row with its ref) and fills rec.
func (st *state) put(r resources.Resource, rec *Record) error {
	body, secret, err := st.db.encode(r)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	ref := r.Meta().Ref
	fresh, err := st.db.decode(row{ref: ref, kind: kindOf(r), body: body, secret: secret})
	if err != nil {
		return fmt.Errorf("store: encoded resource does not decode: %w", err)
	}
	e, ok := st.byRef[ref]
	if !ok {
		st.all = append(st.all, entry{row: row{ref: ref, kind: kindOf(r), seq: st.rev, created: st.now}})
		e = &st.all[len(st.all)-1]
		// Appending may have moved the entries: rebuild the index.
		st.reindex()
	}
	e.row.body, e.row.secret, e.row.rev, e.row.updated = body, secret, st.rev, st.now
	e.res = fresh
	st.built[ref] = r
	st.puts = append(st.puts, e)
	*rec = Record{Resource: fresh, CreatedAt: time.UnixMicro(e.row.created), UpdatedAt: time.UnixMicro(st.now)}
	// Hand the caller a value of its own, not the one validated below.
	if own, err := st.db.decode(e.row); err == nil {
		rec.Resource = own
	}
	return nil
}

func (st *state) reindex() {
	st.byRef = make(map[string]*entry, len(st.all))
	for i := range st.all {
		st.byRef[st.all[i].row.ref] = &st.all[i]
	}
	for i, p := range st.puts {
		st.puts[i] = st.byRef[p.row.ref]
	}
}

// del removes the resource with ref.
func (st *state) del(ref string) {
	for i := range st.all {
		if st.all[i].row.ref == ref {
			st.all = append(st.all[:i], st.all[i+1:]...)
			break
		}
	}
	delete(st.built, ref)
	st.deletes = append(st.deletes, ref)
	st.reindex()
}

// mutate runs one write: it locks the revision, loads every resource, lets
// op change them, validates the whole result with resources.Build, writes
// the changes with the next revision, notifies the other instances and,
// after the commit, hands the new Set to this instance's watchers.
func (db *DB) mutate(ctx context.Context, op func(*state) error) (err error) {
	defer func() {
		if err != nil {
			db.metrics.writeErrors.Add(1)
		}
	}()
	if err := db.checkOpen(); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap("begin", err)
	}
	defer tx.Rollback()
	var rev int64
	if err := tx.QueryRowContext(ctx, db.d.lockMeta).Scan(&rev); err != nil {
		return db.wrap("lock revision", err)
	}
	all, err := db.loadAll(ctx, tx)
	if err != nil {
		return err
	}
	st := &state{db: db, rev: rev + 1, now: time.Now().UnixMicro(), all: all, built: make(map[string]resources.Resource)}
	st.reindex()
	if err := op(st); err != nil {
		return err
	}
	if len(st.puts) == 0 && len(st.deletes) == 0 {
		return nil
	}
	// Validate the rows as they will be stored: the Set built is what a
	// Snapshot after this commit returns, and what watchers get. The
	// stored form decodes to what the caller gave (Marshal round-trips),
	// so only when it fails is the caller's own form built again, for
	// problems that carry its file and line.
	rs := make([]resources.Resource, len(st.all))
	for i, e := range st.all {
		rs[i] = e.res
	}
	set, err := resources.Build(rs)
	if err != nil {
		for i, e := range st.all {
			if r, ok := st.built[e.row.ref]; ok {
				rs[i] = r
			}
		}
		if _, err2 := resources.Build(rs); err2 != nil {
			return err2 // a *resources.ValidationError
		}
		return err
	}

	for _, ref := range st.deletes {
		if _, err := tx.ExecContext(ctx, db.d.q("DELETE FROM resources WHERE ref = ?"), ref); err != nil {
			return db.wrap("delete", err)
		}
	}
	for _, e := range st.puts {
		r := e.row
		if r.seq == st.rev && r.created == st.now {
			_, err = tx.ExecContext(ctx, db.d.q("INSERT INTO resources ("+rowColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
				r.ref, string(r.kind), string(r.body), r.secret, r.seq, r.rev, r.created, r.updated)
		} else {
			_, err = tx.ExecContext(ctx, db.d.q("UPDATE resources SET body = ?, secret = ?, rev = ?, updated_at = ? WHERE ref = ?"),
				string(r.body), r.secret, r.rev, r.updated, r.ref)
		}
		if err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%s %q: %w", r.kind, r.ref, ErrAlreadyExists)
			}
			return db.wrap("write", err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.d.q("UPDATE store_meta SET revision = ? WHERE id = 1"), st.rev); err != nil {
		return db.wrap("bump revision", err)
	}
	if db.d == postgresDialect {
		// Delivered on commit to every instance LISTENing.
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, strconv.FormatInt(st.rev, 10)); err != nil {
			return db.wrap("notify", err)
		}
	}
	if err := tx.Commit(); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w", ErrAlreadyExists)
		}
		return db.wrap("commit", err)
	}
	db.metrics.writes.Add(1)
	db.publish(set, uint64(st.rev))
	return nil
}

// isUniqueViolation reports a primary key conflict (SQLSTATE 23505, or
// SQLite's constraint error), which the revision lock makes unexpected
// but which still means "already exists".
func isUniqueViolation(err error) bool {
	var sc interface{ SQLState() string }
	if errors.As(err, &sc) {
		return sc.SQLState() == "23505"
	}
	var code interface{ Code() int }
	if errors.As(err, &code) {
		return code.Code()&0xff == 19 // SQLITE_CONSTRAINT
	}
	return false
}

// seed stores o.Seed if the database is still empty when the write lock
// is held (another instance may have seeded it first).
func (db *DB) seed(ctx context.Context) error {
	n := 0
	err := db.mutate(ctx, func(st *state) error {
		if st.rev != 1 || len(st.all) > 0 {
			return nil
		}
		for _, r := range db.opts.Seed {
			if r.Meta().Ref == "" {
				continue
			}
			var rec Record
			if _, dup := st.byRef[r.Meta().Ref]; dup {
				continue
			}
			if err := st.put(r, &rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	if n > 0 {
		db.log.Info("store: seeded an empty database", "backend", db.d.name, "resources", n)
	}
	return nil
}
