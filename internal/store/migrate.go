package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrationsFor reads the dialect's migrations, ordered by version. Files
// are named NNNN_description.sql; statements end with a semicolon at the
// end of a line.
func migrationsFor(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", dir, e.Name())
		}
		data, err := fs.ReadFile(migrationFiles, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), stmts: splitStatements(string(data))})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// splitStatements splits a migration into statements at lines ending with
// ";", dropping comment-only lines.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// migrationLockID is the PostgreSQL advisory lock that serializes
// migrations of instances starting together ("routr-go" in ASCII).
const migrationLockID = 0x726f7574722d676f

// migrate applies pending migrations, each in its own transaction with its
// schema_migrations row, so that a failed one leaves nothing half done.
// Instances starting at once take turns: PostgreSQL through an advisory
// lock, SQLite through its write lock; each re-reads what is applied once
// it holds the lock.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrationsFor(db.d.name)
	if err != nil {
		return db.wrap("migrations", err)
	}
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return db.wrap("connect", err)
	}
	defer conn.Close()
	if db.d == postgresDialect {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
			return db.wrap("lock for migrations", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLockID))
		if db.schema != "" {
			// As Prisma does, create the schema DATABASE_URL names.
			if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{db.schema}.Sanitize()); err != nil {
				return db.wrap("create schema "+db.schema, err)
			}
		}
	}
	for _, m := range ms {
		if err := db.migrateOne(ctx, conn, m); err != nil {
			return db.wrap("migration "+m.name, err)
		}
	}
	return nil
}

func (db *DB) migrateOne(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL
)`); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, db.d.q("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, s := range m.stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%.60q: %w", s, err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.d.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), m.version, time.Now().UnixMicro()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.log.Info("store: migration applied", "backend", db.d.name, "version", m.version, "name", m.name)
	return nil
}
