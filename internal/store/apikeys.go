package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// API keys read "rk_<id>_<secret>": id is 16 hex digits, public, and names
// the key; secret is 32 random bytes in base64url. Only SHA-256(secret) is
// stored: the secret has full entropy, so a slow hash adds nothing.
const apiKeyPrefix = "rk_"

// maxAPIKeyName bounds a key's name.
const maxAPIKeyName = 200

// CreateAPIKey implements Store.
func (db *DB) CreateAPIKey(ctx context.Context, name string) (string, APIKey, error) {
	if err := db.checkOpen(); err != nil {
		return "", APIKey{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxAPIKeyName {
		return "", APIKey{}, fmt.Errorf("API key name must be 1 to %d characters", maxAPIKeyName)
	}
	idb := make([]byte, 8)
	secret := make([]byte, 32)
	_, _ = rand.Read(idb)
	_, _ = rand.Read(secret)
	id := hex.EncodeToString(idb)
	sum := sha256.Sum256(secret)
	now := time.Now()
	if _, err := db.w.ExecContext(ctx, db.d.q("INSERT INTO api_keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)"),
		id, name, sum[:], now.UnixMicro()); err != nil {
		return "", APIKey{}, db.wrap("create API key", err)
	}
	plain := apiKeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return plain, APIKey{ID: id, Name: name, CreatedAt: time.UnixMicro(now.UnixMicro())}, nil
}

// RevokeAPIKey implements Store.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	if err := db.checkOpen(); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, db.d.q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0"), time.Now().UnixMicro(), id)
	if err != nil {
		return db.wrap("revoke API key", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var one int
	err = db.r.QueryRowContext(ctx, db.d.q("SELECT 1 FROM api_keys WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("API key %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return db.wrap("revoke API key", err)
	}
	return nil // already revoked
}

// ListAPIKeys implements Store.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
	if err != nil {
		return nil, db.wrap("list API keys", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var created, revoked int64
		if err := rows.Scan(&k.ID, &k.Name, &created, &revoked); err != nil {
			return nil, db.wrap("list API keys", err)
		}
		k.CreatedAt = time.UnixMicro(created)
		if revoked != 0 {
			k.RevokedAt = time.UnixMicro(revoked)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list API keys", err)
	}
	return out, nil
}

// CheckAPIKey implements Store.
func (db *DB) CheckAPIKey(ctx context.Context, plaintext string) (APIKey, error) {
	if err := db.checkOpen(); err != nil {
		return APIKey{}, err
	}
	id, secret, ok := parseAPIKey(plaintext)
	if !ok {
		return APIKey{}, ErrUnauthenticated
	}
	var k APIKey
	var hash []byte
	var created, revoked int64
	err := db.r.QueryRowContext(ctx, db.d.q("SELECT id, name, hash, created_at, revoked_at FROM api_keys WHERE id = ?"), id).
		Scan(&k.ID, &k.Name, &hash, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrUnauthenticated
	}
	if err != nil {
		return APIKey{}, db.wrap("check API key", err)
	}
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || revoked != 0 {
		return APIKey{}, ErrUnauthenticated
	}
	k.CreatedAt = time.UnixMicro(created)
	return k, nil
}

// parseAPIKey splits "rk_<id>_<secret>".
func parseAPIKey(s string) (id string, secret []byte, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), apiKeyPrefix)
	if !ok || len(rest) > 100 {
		return "", nil, false
	}
	id, enc, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 {
		return "", nil, false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", nil, false
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(secret) != 32 {
		return "", nil, false
	}
	return id, secret, true
}
