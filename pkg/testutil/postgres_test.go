package testutil_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

func TestStartPostgres(t *testing.T) {
	pg := testutil.StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pg.CreateDatabase(t, "keep")
	exec := func(sql string) {
		t.Helper()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
	pg.Stop()
	pg.Start()
	exec("DELETE FROM t WHERE v = 42") // the table and row survived the restart
	bad := "postgres://" + testutil.PostgresUser + ":wrong@" + pg.Addr() + "/keep?sslmode=disable"
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
}
