package vfs

import (
	"context"
	"net/url"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/internal/s3test"
)

// An s3:// replica URL in a DSN works: the backend is linked in by the vfs
// package, and credentials come from the standard AWS chain.
func TestS3ReplicaURL(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	raw := srv.URL(bucket, "app")
	m, err := fixture.Upload(context.Background(), srv.Client(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)

	db := openDB(t, "file:app.db?vfs=ltx&txid=5&replica="+url.QueryEscape(raw))
	var rows, sumN int64
	var names string
	if err := db.QueryRow(m.Query).Scan(&rows, &sumN, &names); err != nil {
		t.Fatal(err)
	}
	st, _ := m.State(5)
	if err := st.CheckQuery(rows, sumN, names); err != nil {
		t.Fatal(err)
	}
}
