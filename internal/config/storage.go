package config

import (
	"net/url"
	"strings"
)

// DefaultDatabasePath is the embedded database used when neither
// DATABASE_URL nor PATH_TO_RESOURCES is set; relative to the working
// directory, like DefaultConfigPath.
const DefaultDatabasePath = "data/routr.db"

// Storage says where resources are kept. Its zero value is the default:
// the embedded database at DefaultDatabasePath, seeded from the example
// resources in ResourcesPath when it is first created.
type Storage struct {
	// DatabaseURL is DATABASE_URL: "postgres://…" or "postgresql://…"
	// (as Routr's), "sqlite:<path>" or a file path for the embedded
	// database. Empty means the files mode when PATH_TO_RESOURCES is set,
	// else the default embedded database.
	DatabaseURL string
	// EncryptionKey is ENCRYPTION_KEY: 32 bytes as 64 hex digits or base64,
	// sealing Credentials' passwords in the database. Required with
	// PostgreSQL; the embedded database keeps a generated one beside its
	// file when unset.
	EncryptionKey string
	// ResourcesPathSet is true when PATH_TO_RESOURCES was given.
	ResourcesPathSet bool
}

// StorageMode is where resources come from.
type StorageMode string

// Storage modes.
const (
	// StorageFiles reads resource files once, read-only (PATH_TO_RESOURCES
	// set, DATABASE_URL not).
	StorageFiles StorageMode = "files"
	// StorageDatabase is the database in DATABASE_URL; an empty one is
	// seeded from PATH_TO_RESOURCES only when that is set.
	StorageDatabase StorageMode = "database"
	// StorageDefault is the embedded database at DefaultDatabasePath,
	// seeded from ResourcesPath when first created.
	StorageDefault StorageMode = "default"
)

// Mode returns the storage mode the settings select.
func (s Storage) Mode() StorageMode {
	switch {
	case s.DatabaseURL != "":
		return StorageDatabase
	case s.ResourcesPathSet:
		return StorageFiles
	}
	return StorageDefault
}

// URL returns the database URL in the database modes.
func (s Storage) URL() string {
	if s.DatabaseURL != "" {
		return s.DatabaseURL
	}
	return "sqlite:" + DefaultDatabasePath
}

// applyStorageEnv reads DATABASE_URL and ENCRYPTION_KEY.
func applyStorageEnv(e *envReader, s *Storage) {
	_, s.ResourcesPathSet = e.get("PATH_TO_RESOURCES")
	if v, ok := e.get("DATABASE_URL"); ok {
		if scheme, _, found := strings.Cut(v, "://"); found && scheme != "postgres" && scheme != "postgresql" {
			e.errorf("DATABASE_URL", "unsupported database %q (want postgres://…, postgresql://…, sqlite:<path> or a file path)", scheme)
		} else if found {
			if _, err := url.Parse(v); err != nil {
				e.errorf("DATABASE_URL", "not a URL (check its special characters are %%-encoded)")
			} else {
				s.DatabaseURL = v
			}
		} else {
			s.DatabaseURL = v
		}
	}
	if v, ok := e.get("ENCRYPTION_KEY"); ok {
		s.EncryptionKey = v
	}
}
