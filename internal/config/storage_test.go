package config

import (
	"strings"
	"testing"
)

func TestStorageEnv(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		mode    StorageMode
		url     string
		wantErr string
	}{
		{map[string]string{}, StorageDefault, "sqlite:" + DefaultDatabasePath, ""},
		{map[string]string{"PATH_TO_RESOURCES": "/etc/routr/resources"}, StorageFiles, "", ""},
		{map[string]string{"DATABASE_URL": "postgresql://routr:secret@db:5432/routr?schema=public"}, StorageDatabase, "postgresql://routr:secret@db:5432/routr?schema=public", ""},
		{map[string]string{"DATABASE_URL": "sqlite:/var/lib/routr/r.db", "PATH_TO_RESOURCES": "x"}, StorageDatabase, "sqlite:/var/lib/routr/r.db", ""},
		{map[string]string{"DATABASE_URL": "/var/lib/routr/r.db"}, StorageDatabase, "/var/lib/routr/r.db", ""},
		{map[string]string{"DATABASE_URL": "mysql://root@db/routr"}, "", "", `DATABASE_URL: unsupported database "mysql"`},
		{map[string]string{"DATABASE_URL": "postgres://u:p%zz@db/routr"}, "", "", "DATABASE_URL: not a URL"},
	} {
		c, err := Load(envOf(tc.env))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "p%zz") {
				t.Errorf("%v: error %v, want %q (without the password)", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if m := c.Storage.Mode(); m != tc.mode {
			t.Errorf("%v: mode %s, want %s", tc.env, m, tc.mode)
		}
		if tc.url != "" && c.Storage.URL() != tc.url {
			t.Errorf("%v: URL %s, want %s", tc.env, c.Storage.URL(), tc.url)
		}
	}
	c, err := Load(envOf(map[string]string{"ENCRYPTION_KEY": " abc "}))
	if err != nil || c.Storage.EncryptionKey != "abc" {
		t.Errorf("ENCRYPTION_KEY read as %q, %v", c.Storage.EncryptionKey, err)
	}
}
