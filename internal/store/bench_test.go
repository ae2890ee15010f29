package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkCreate measures one validated write into a database already
// holding b.N-independent 1000 Domains (each write reads and validates
// the whole set).
func BenchmarkCreate(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var url string
			if name == "sqlite" {
				url = "sqlite:" + b.TempDir() + "/bench.db"
			} else {
				if err := pingPostgres(); err != nil {
					b.Skip(err)
				}
				url = newPostgresDBB(b)
			}
			ctx := context.Background()
			db, err := Open(ctx, Options{URL: url, Key: testKey})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for i := range 1000 {
				ref := fmt.Sprintf("pre%d", i)
				if _, err := db.Create(ctx, domain(ref, ref+".example.com")); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ref := fmt.Sprintf("d%d", i)
				if _, err := db.Create(ctx, domain(ref, ref+".example.com")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
