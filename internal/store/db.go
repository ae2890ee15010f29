package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/routr-go/routr/internal/resources"
)

// row is one stored resource as read from the database.
type row struct {
	ref              string
	kind             resources.Kind
	body             []byte
	secret           []byte
	seq, rev         int64
	created, updated int64
}

const rowColumns = "ref, kind, body, secret, seq, rev, created_at, updated_at"

func scanRow(sc interface{ Scan(...any) error }) (row, error) {
	var r row
	var kind, body string
	err := sc.Scan(&r.ref, &kind, &body, &r.secret, &r.seq, &r.rev, &r.created, &r.updated)
	r.kind, r.body = resources.Kind(kind), []byte(body)
	return r, err
}

// decode turns a row into a fresh resource with its password opened.
func (db *DB) decode(r row) (resources.Resource, error) {
	res, err := resources.Unmarshal(r.body)
	if err != nil {
		return nil, fmt.Errorf("stored %s %q: %w", r.kind, r.ref, err)
	}
	if c, ok := res.(*resources.Credentials); ok && r.secret != nil {
		pw, err := db.seal.open(r.secret, credentialsAD(r.ref))
		if err != nil {
			return nil, fmt.Errorf("password of Credentials %q: %w", r.ref, err)
		}
		c.Password = pw
	}
	return res, nil
}

func (db *DB) record(r row) (Record, error) {
	res, err := db.decode(r)
	if err != nil {
		return Record{}, err
	}
	return Record{Resource: res, CreatedAt: time.UnixMicro(r.created), UpdatedAt: time.UnixMicro(r.updated)}, nil
}

// encode returns what is stored for res: its body, and its password sealed.
func (db *DB) encode(res resources.Resource) (body []byte, secret []byte, err error) {
	if c, ok := res.(*resources.Credentials); ok {
		cp := *c
		cp.Password = ""
		if c.Password != "" {
			secret = db.seal.seal(c.Password, credentialsAD(c.Ref))
		}
		res = &cp
	}
	body, err = resources.Marshal(res)
	return body, secret, err
}

func (db *DB) checkOpen() error {
	select {
	case <-db.done:
		return ErrClosed
	default:
		return nil
	}
}

// Revision implements Store.
func (db *DB) Revision(ctx context.Context) (uint64, error) {
	if err := db.checkOpen(); err != nil {
		return 0, err
	}
	var rev int64
	if err := db.r.QueryRowContext(ctx, "SELECT revision FROM store_meta WHERE id = 1").Scan(&rev); err != nil {
		return 0, db.wrap("read revision", err)
	}
	return uint64(rev), nil
}

// Snapshot implements Store.
func (db *DB) Snapshot(ctx context.Context) (*resources.Set, uint64, error) {
	if err := db.checkOpen(); err != nil {
		return nil, 0, err
	}
	// One read transaction, so that the revision matches the rows.
	var opts *sql.TxOptions
	if db.d == postgresDialect {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, 0, db.wrap("begin", err)
	}
	defer tx.Rollback()
	var rev int64
	if err := tx.QueryRowContext(ctx, "SELECT revision FROM store_meta WHERE id = 1").Scan(&rev); err != nil {
		return nil, 0, db.wrap("read revision", err)
	}
	all, err := db.loadAll(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	rs := make([]resources.Resource, len(all))
	for i, e := range all {
		rs[i] = e.res
	}
	set, err := resources.Build(rs)
	if err != nil {
		return nil, 0, fmt.Errorf("store: stored resources do not validate: %w", err)
	}
	return set, uint64(rev), nil
}

// entry is a decoded row.
type entry struct {
	row row
	res resources.Resource
}

// loadAll reads and decodes every resource in creation order.
func (db *DB) loadAll(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]entry, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+rowColumns+" FROM resources ORDER BY seq")
	if err != nil {
		return nil, db.wrap("read resources", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, db.wrap("read resources", err)
		}
		out = append(out, entry{row: r})
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("read resources", err)
	}
	if err := db.decodeAll(out); err != nil {
		return nil, err
	}
	return out, nil
}

// cached is a decoded row, shared read-only between loads.
type cached struct {
	rev int64
	res resources.Resource
}

// decodeAll fills in the resources of es, reusing those decoded before at
// the same revision of their row: parsing and decrypting every row on
// every write and reload would dominate their cost. The cache then holds
// exactly the rows of es, so it is bounded by the number of resources.
func (db *DB) decodeAll(es []entry) error {
	db.cacheMu.Lock()
	old := db.cache
	db.cacheMu.Unlock()
	next := make(map[string]cached, len(es))
	for i := range es {
		r := es[i].row
		if c, ok := old[r.ref]; ok && c.rev == r.rev {
			es[i].res = c.res
		} else {
			res, err := db.decode(r)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			es[i].res = res
		}
		next[r.ref] = cached{r.rev, es[i].res}
	}
	db.cacheMu.Lock()
	db.cache = next
	db.cacheMu.Unlock()
	return nil
}

// Get implements Store.
func (db *DB) Get(ctx context.Context, kind resources.Kind, ref string) (Record, error) {
	if err := db.checkOpen(); err != nil {
		return Record{}, err
	}
	r, err := scanRow(db.r.QueryRowContext(ctx, db.d.q("SELECT "+rowColumns+" FROM resources WHERE ref = ?"), ref))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%s %q: %w", kind, ref, ErrNotFound)
	}
	if err != nil {
		return Record{}, db.wrap("get", err)
	}
	if r.kind != kind {
		return Record{}, kindMismatch(kind, ref, r.kind)
	}
	return db.record(r)
}

// kindMismatch is the error for a ref that names a resource of another
// kind; it matches ErrNotFound too, since there is no such resource of
// the kind asked for.
func kindMismatch(want resources.Kind, ref string, got resources.Kind) error {
	return fmt.Errorf("%s %q: %w (it is a %s): %w", want, ref, ErrNotFound, got, ErrKindMismatch)
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// List implements Store.
func (db *DB) List(ctx context.Context, kind resources.Kind, pageSize int, pageToken string) ([]Record, string, error) {
	if err := db.checkOpen(); err != nil {
		return nil, "", err
	}
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	pageSize = min(pageSize, maxPageSize)
	after := int64(0)
	if pageToken != "" {
		v, err := decodeToken(pageToken)
		if err != nil {
			return nil, "", &resources.ValidationError{Problems: []resources.Problem{{Field: "pageToken", Msg: "invalid page token"}}}
		}
		after = v
	}
	rows, err := db.r.QueryContext(ctx, db.d.q("SELECT "+rowColumns+" FROM resources WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?"),
		string(kind), after, pageSize+1)
	if err != nil {
		return nil, "", db.wrap("list", err)
	}
	defer rows.Close()
	var out []Record
	var last int64
	next := ""
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, "", db.wrap("list", err)
		}
		if len(out) == pageSize {
			next = encodeToken(last)
			break
		}
		rec, err := db.record(r)
		if err != nil {
			return nil, "", fmt.Errorf("store: %w", err)
		}
		out = append(out, rec)
		last = r.seq
	}
	if err := rows.Err(); err != nil {
		return nil, "", db.wrap("list", err)
	}
	return out, next, nil
}

func encodeToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || b[0] != 's' {
		return 0, errors.New("invalid page token")
	}
	v, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || v < 0 {
		return 0, errors.New("invalid page token")
	}
	return v, nil
}

// Create implements Store.
func (db *DB) Create(ctx context.Context, r resources.Resource) (Record, error) {
	if r == nil || kindOf(r) == "" {
		return Record{}, errors.New("store: create: no resource")
	}
	kind := kindOf(r)
	if r.Meta().Ref == "" {
		r = withRef(r, uuid.NewString())
	}
	ref := r.Meta().Ref
	var rec Record
	err := db.mutate(ctx, func(st *state) error {
		if old, ok := st.byRef[ref]; ok {
			return fmt.Errorf("%s %q: %w (as a %s)", kind, ref, ErrAlreadyExists, old.row.kind)
		}
		return st.put(r, &rec)
	})
	return rec, err
}

// Update implements Store.
func (db *DB) Update(ctx context.Context, r resources.Resource) (Record, error) {
	if r == nil || kindOf(r) == "" {
		return Record{}, errors.New("store: update: no resource")
	}
	kind, ref := kindOf(r), r.Meta().Ref
	var rec Record
	err := db.mutate(ctx, func(st *state) error {
		old, ok := st.byRef[ref]
		if !ok {
			return fmt.Errorf("%s %q: %w", kind, ref, ErrNotFound)
		}
		if old.row.kind != kind {
			return kindMismatch(kind, ref, old.row.kind)
		}
		return st.put(r, &rec)
	})
	return rec, err
}

// Delete implements Store.
func (db *DB) Delete(ctx context.Context, kind resources.Kind, ref string) error {
	return db.mutate(ctx, func(st *state) error {
		old, ok := st.byRef[ref]
		if !ok {
			return fmt.Errorf("%s %q: %w", kind, ref, ErrNotFound)
		}
		if old.row.kind != kind {
			return kindMismatch(kind, ref, old.row.kind)
		}
		var others []resources.Resource
		for _, e := range st.all {
			if e.row.ref != ref {
				others = append(others, e.res)
			}
		}
		if by := referrers(others, ref); len(by) > 0 {
			return &ReferencedError{Kind: kind, Ref: ref, By: by}
		}
		st.del(ref)
		return nil
	})
}

// withRef returns a copy of r's top level with Ref set; the copy shares
// slices with r, which neither the store nor Build modifies.
func withRef(r resources.Resource, ref string) resources.Resource {
	var out resources.Resource
	switch x := r.(type) {
	case *resources.Domain:
		y := *x
		out = &y
	case *resources.Agent:
		y := *x
		out = &y
	case *resources.Credentials:
		y := *x
		out = &y
	case *resources.Peer:
		y := *x
		out = &y
	case *resources.Number:
		y := *x
		out = &y
	case *resources.Trunk:
		y := *x
		out = &y
	case *resources.AccessControlList:
		y := *x
		out = &y
	default:
		return r
	}
	out.Meta().Ref = ref
	return out
}
