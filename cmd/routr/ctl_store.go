package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

// ctlStore opens the database the edge uses (DATABASE_URL and
// ENCRYPTION_KEY, or the default embedded database and its key file), for
// the ctl commands that work on it directly: API keys (there is no key to
// call the API with on a fresh install) and apply.
func ctlStore(ctx context.Context, env func(string) string, note io.Writer) (*store.DB, error) {
	cfg, err := config.Load(env)
	if err != nil {
		return nil, err
	}
	if cfg.Storage.Mode() == config.StorageFiles {
		return nil, fmt.Errorf("PATH_TO_RESOURCES without DATABASE_URL is the read-only files mode: set DATABASE_URL (or unset PATH_TO_RESOURCES for the default embedded database)")
	}
	url := cfg.Storage.URL()
	fresh := false
	if !store.IsPostgres(url) {
		_, err := os.Stat(store.SQLitePath(url))
		fresh = errors.Is(err, fs.ErrNotExist)
	}
	db, err := openStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	if err == nil && fresh {
		// Say so: from the wrong directory, the default path makes a
		// database the edge does not use.
		fmt.Fprintf(note, "routr ctl: created a new database %s\n", store.SQLitePath(url))
	}
	return db, err
}

func ctlAPIKey(ctx context.Context, env func(string) string, pos []string, f ctlFlags, stdout, stderr io.Writer) error {
	if len(pos) == 0 {
		return usagef("want create <name>, revoke <id> or list")
	}
	db, err := ctlStore(ctx, env, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	switch pos[0] {
	case "create":
		if len(pos) != 2 {
			return usagef("apikey create: want one name")
		}
		plain, k, err := db.CreateAPIKey(ctx, pos[1])
		if err != nil {
			return err
		}
		if f.output == "json" {
			fmt.Fprintf(stdout, "{\"id\": %q, \"name\": %q, \"key\": %q}\n", k.ID, k.Name, plain)
			return nil
		}
		fmt.Fprintf(stdout, "id:   %s\nname: %s\nkey:  %s\n(the key is shown only now; send it as x-api-key)\n", k.ID, k.Name, plain)
	case "revoke":
		if len(pos) != 2 {
			return usagef("apikey revoke: want one id")
		}
		if err := db.RevokeAPIKey(ctx, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", pos[1])
	case "list":
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			rev := ""
			if !k.RevokedAt.IsZero() {
				rev = k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt.UTC().Format(time.RFC3339), rev)
		}
		return tw.Flush()
	default:
		return usagef("apikey %q: want create, revoke or list", pos[0])
	}
	return nil
}

// ctlApply reads Routr resource files (one file, or every .yaml, .yml and
// .json file under a directory) and creates or updates each resource in
// the database, refs kept.
func ctlApply(ctx context.Context, env func(string) string, f ctlFlags, stdout, stderr io.Writer) error {
	if f.file == "" {
		return usagef("apply: -f <file or directory> is required")
	}
	rs, err := readResourceFiles(f.file)
	if err != nil {
		return err
	}
	db, err := ctlStore(ctx, env, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	recs, err := store.Apply(ctx, db, rs)
	for _, r := range recs {
		b := r.Resource.Meta()
		fmt.Fprintf(stdout, "applied %s %s\n", b.Kind, b.Ref)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d resources applied\n", len(recs))
	return nil
}

func readResourceFiles(path string) ([]resources.Resource, error) {
	var files []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		default:
			if p == path { // a file named explicitly is read whatever its name
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	var all []resources.Resource
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		rs, err := resources.Parse(file, data)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return all, nil
}
