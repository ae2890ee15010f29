// Package store provides persistent, shared storage of resources (an
// embedded SQLite file or PostgreSQL) with validation of every write,
// passwords encrypted at rest, API keys, and live reload into a
// resources.Holder.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/routr-go/routr/internal/resources"
)

// Sentinel errors. Callers test them with errors.Is; the returned errors
// wrap them with context (the kind and ref concerned).
var (
	// ErrNotFound: no resource (or API key) with that kind and ref (id).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create with a ref that is already taken (by a
	// resource of any kind, since refs are unique across kinds).
	ErrAlreadyExists = errors.New("already exists")
	// ErrReferenced: Delete of a resource that another resource still
	// refers to. The error is a *ReferencedError naming the referrers.
	ErrReferenced = errors.New("still referenced")
	// ErrKindMismatch: Get, Update or Delete named a ref that exists with
	// another kind. Such errors match ErrNotFound too (there is no
	// resource of the kind asked for).
	ErrKindMismatch = errors.New("kind mismatch")
	// ErrUnauthenticated: CheckAPIKey with a key that is unknown, revoked
	// or malformed.
	ErrUnauthenticated = errors.New("invalid API key")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store closed")
)

// Validation failures are returned as the *resources.ValidationError from
// resources.Build (errors.As finds it), so that an API maps them to
// InvalidArgument and shows every problem.

// ReferencedError is returned by Delete when other resources still refer to
// the one being deleted. errors.Is(err, ErrReferenced) is true.
type ReferencedError struct {
	Kind resources.Kind
	Ref  string
	// By lists the referrers as "Kind ref" pairs (e.g. `Agent "a1"`).
	By []Referrer
}

// Referrer is one resource holding a reference.
type Referrer struct {
	Kind  resources.Kind
	Ref   string
	Field string // the field that holds the ref, "spec.domainRef"
}

func (e *ReferencedError) Error() string {
	parts := make([]string, len(e.By))
	for i, r := range e.By {
		parts[i] = fmt.Sprintf("%s %q (%s)", r.Kind, r.Ref, r.Field)
	}
	return fmt.Sprintf("%s %q is %s by %s", e.Kind, e.Ref, ErrReferenced, strings.Join(parts, ", "))
}

// Unwrap makes errors.Is(err, ErrReferenced) true.
func (e *ReferencedError) Unwrap() error { return ErrReferenced }

// Record is one stored resource with its timestamps. Resource is a fresh,
// unlinked value (the Build-resolved pointers such as Agent.Domain are
// nil) that the caller owns and may modify; Credentials carry the
// plaintext password.
type Record struct {
	Resource  resources.Resource
	CreatedAt time.Time
	UpdatedAt time.Time
}

// APIKey describes a management API key. The key itself is shown only once,
// by CreateAPIKey; the store keeps a hash.
type APIKey struct {
	// ID is a short public identifier, also the key's prefix, used to
	// revoke it and shown in logs.
	ID        string
	Name      string
	CreatedAt time.Time
	// RevokedAt is zero while the key is valid.
	RevokedAt time.Time
}

// Store is where resources live in database mode. Every method is safe for
// concurrent use, also across processes sharing one database.
type Store interface {
	// Snapshot returns every resource, built and linked (passwords
	// decrypted), and the revision it reflects.
	Snapshot(ctx context.Context) (*resources.Set, uint64, error)
	// Revision returns the current revision: a counter bumped by every
	// successful write.
	Revision(ctx context.Context) (uint64, error)

	// Get returns the resource of kind with ref; ErrNotFound if absent,
	// ErrKindMismatch if ref names another kind.
	Get(ctx context.Context, kind resources.Kind, ref string) (Record, error)
	// List returns up to pageSize resources of kind (a default of 100
	// when pageSize <= 0, at most 1000) ordered by creation, and the
	// token for the next page ("" after the last). pageToken is "" for
	// the first page, else a token List returned; a token it did not
	// return is a *resources.ValidationError.
	List(ctx context.Context, kind resources.Kind, pageSize int, pageToken string) (recs []Record, nextPageToken string, err error)

	// Create stores a new resource. An empty Ref gets a fresh UUID; a
	// taken one is ErrAlreadyExists. The whole resulting set is validated
	// with resources.Build (a *resources.ValidationError on failure) in
	// the same transaction, so concurrent writers cannot together break
	// the set.
	Create(ctx context.Context, r resources.Resource) (Record, error)
	// Update replaces the resource with r.Meta().Ref (ErrNotFound if
	// absent, ErrKindMismatch if the kind differs), validated like
	// Create; CreatedAt is kept.
	Update(ctx context.Context, r resources.Resource) (Record, error)
	// Delete removes the resource of kind with ref; ErrNotFound if
	// absent, a *ReferencedError (errors.Is ErrReferenced) if another
	// resource refers to it.
	Delete(ctx context.Context, kind resources.Kind, ref string) error

	// CreateAPIKey makes a new API key named name and returns its
	// plaintext (shown once; only a hash is stored).
	CreateAPIKey(ctx context.Context, name string) (plaintext string, k APIKey, err error)
	// RevokeAPIKey revokes the key with id (ErrNotFound if unknown).
	// Revoking twice is not an error.
	RevokeAPIKey(ctx context.Context, id string) error
	// ListAPIKeys returns every key, revoked ones included, oldest first.
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// CheckAPIKey returns the valid key whose plaintext is plaintext, or
	// ErrUnauthenticated.
	CheckAPIKey(ctx context.Context, plaintext string) (APIKey, error)

	// Close releases the database. Watchers started with Watch stop.
	Close() error
}

// Apply creates each resource whose ref is not stored yet and updates each
// one that is, as `routr ctl apply -f` does; resources without a ref are
// created with a fresh one. Each write is validated against the whole
// set, so Apply first orders rs so that referenced kinds come first (ACLs,
// Credentials, Trunks, Numbers, Domains, Agents, Peers). It stops at the
// first error, returning the records written so far. Problems keep the
// file and line of resources read with resources.Parse.
func Apply(ctx context.Context, s Store, rs []resources.Resource) ([]Record, error) {
	return apply(ctx, s, rs)
}
