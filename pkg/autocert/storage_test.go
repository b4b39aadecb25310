package autocert_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/autocert"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

func TestDataBrokerStorage(t *testing.T) {
	db := databrokertest.Start(t)
	a, b := autocert.NewDataBrokerStorage(db.Client()), autocert.NewDataBrokerStorage(db.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := a.Load(ctx, "certificates/x/a.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	for _, k := range []string{"certificates/ca/a.example.com/a.crt", "certificates/ca/a.example.com/a.key", "certificates/ca/b.example.com/b.crt", "acme/account.json"} {
		if err := a.Store(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	// Another replica sees what one stored.
	if v, err := b.Load(ctx, "acme/account.json"); err != nil || string(v) != "v:acme/account.json" {
		t.Fatalf("load: %q %v", v, err)
	}
	if !b.Exists(ctx, "certificates/ca/b.example.com/b.crt") || b.Exists(ctx, "certificates/nope") {
		t.Error("Exists")
	}
	if ki, err := b.Stat(ctx, "acme/account.json"); err != nil || ki.Size != int64(len("v:acme/account.json")) || !ki.IsTerminal || ki.Modified.IsZero() {
		t.Errorf("stat %+v %v", ki, err)
	}
	got, err := b.List(ctx, "certificates/ca", false)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"certificates/ca/a.example.com", "certificates/ca/b.example.com"}) {
		t.Errorf("list: %v %v", got, err)
	}
	got, _ = b.List(ctx, "certificates", true)
	if len(got) != 3 {
		t.Errorf("recursive list: %v", got)
	}
	if err := b.Delete(ctx, "certificates/ca/a.example.com"); err != nil {
		t.Fatal(err)
	}
	if a.Exists(ctx, "certificates/ca/a.example.com/a.crt") || !a.Exists(ctx, "certificates/ca/b.example.com/b.crt") {
		t.Error("delete of a directory")
	}

	// One replica holds an order's lock; the other waits until it is
	// released.
	if err := a.Lock(ctx, "issue_cert_a.example.com"); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 700*time.Millisecond)
	err = b.Lock(short, "issue_cert_a.example.com")
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second replica got the lock: %v", err)
	}
	got2 := make(chan error, 1)
	go func() { got2 <- b.Lock(ctx, "issue_cert_a.example.com") }()
	if err := a.Unlock(ctx, "issue_cert_a.example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got2:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the lock was never handed over")
	}
	if err := b.Unlock(ctx, "issue_cert_a.example.com"); err != nil {
		t.Fatal(err)
	}
}
