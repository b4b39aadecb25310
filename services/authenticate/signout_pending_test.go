package authenticate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	pkgdatabroker "github.com/gatehouse/gatehouse/pkg/databroker"
	"github.com/gatehouse/gatehouse/pkg/handoff"
	"github.com/gatehouse/gatehouse/pkg/sessionhandle"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
	"github.com/gatehouse/gatehouse/services/databroker"
	"github.com/gatehouse/gatehouse/services/databroker/databrokertest"
)

// A sign-out while no databroker answers is not an error page after a long
// wait, and never reported as done: it answers quickly that it is pending,
// clears the cookie, queues the delete (in signout_queue_dir), and the
// delete lands once the databroker is back. Before, the page waited out
// the 10 s client timeout, showed an error, and the session stayed valid
// for good.
func TestSignOutWhileDataBrokerDownIsPendingThenLands(t *testing.T) {
	redis := testutil.StartRedis(t)
	queueDir := filepath.Join(t.TempDir(), "signouts")
	const wait = 300 * time.Millisecond
	e := newEnv(t, envOptions{
		run:       true,
		dbOptions: []databrokertest.Option{databrokertest.WithOptions(databroker.Options{StorageType: databroker.StorageTypeRedis, ConnectionString: redis.URL()})},
		extraYAML: fmt.Sprintf("authenticate_databroker_timeout: %s\nsignout_queue_dir: %s\n", wait, queueDir),
	})
	c := e.client()
	back := e.signIn(c, e.appOrigin+"/", "alice@example.com", "Alice", "")
	handle := e.openCallback(back).Handle
	h, err := sessionhandle.Decode(e.cfg.HandleKey, handle, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refreshToken := e.session(h.ID).GetOauthToken().GetRefreshToken()

	e.dbServer.Stop()
	cipher, _ := cryptutil.NewCipher(e.cfg.CookieSealKey)
	start := time.Now()
	resp, body := get(t, c, handoff.SignOutURL(e.authURL, e.appOrigin+"/", handle, e.cfg.URLKey, cipher, time.Now()).String())
	took := time.Since(start)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, "Sign-out pending") {
		t.Fatalf("sign-out with no databroker: %d %s, want 202 and the pending page", resp.StatusCode, body)
	}
	// Generous against scheduling (the wait is 300 ms): the point is that
	// it is authenticate_databroker_timeout, not the 10 s it was.
	if took > 5*time.Second {
		t.Errorf("the pending page took %v with authenticate_databroker_timeout %v", took, wait)
	}
	cleared := false
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, e.cfg.CookieName+"=;") && strings.Contains(sc, "Max-Age=0") {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("session cookie not cleared: %q", resp.Header.Values("Set-Cookie"))
	}
	if e.svc.PendingSignOuts() == nil {
		t.Error("PendingSignOuts reports nothing pending")
	}
	if files, _ := filepath.Glob(filepath.Join(queueDir, "*.json")); len(files) != 1 {
		t.Errorf("signout_queue_dir holds %v, want one pending sign-out", files)
	}

	// The databroker (on the same Redis) comes back: the queued delete
	// lands without anyone asking again.
	e.dbServer.Restart()
	testutil.WaitFor(t, 15*time.Second, "the pending sign-out to land", func() error {
		resp, err := e.db.Get(context.Background(), &databrokerv1.GetRequest{Type: pkgdatabroker.SessionType, Id: h.ID})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err // the databroker is not back yet
		case resp.GetRecord().GetDeletedAt() == nil:
			return fmt.Errorf("session %s still live", h.ID)
		}
		return e.svc.PendingSignOuts()
	})
	if files, _ := filepath.Glob(filepath.Join(queueDir, "*.json")); len(files) != 0 {
		t.Errorf("signout_queue_dir still holds %v", files)
	}
	// As a sign-out that went through at once: the refresh token is
	// revoked at the IdP.
	resp, _ = postForm(t, c, e.idpURL+"/oauth/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {testClientID}, "client_secret": {testClientSecret},
	})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("refresh with the signed-out session's token: %d, want 400 (revoked)", resp.StatusCode)
	}
}

// Sign-in with no databroker fails fast with the clear 503 page.
func TestSignInWhileDataBrokerDownFailsFast(t *testing.T) {
	const wait = 300 * time.Millisecond
	e := newEnv(t, envOptions{extraYAML: fmt.Sprintf("authenticate_databroker_timeout: %s\n", wait)})
	c := e.client()
	id, _ := e.toIdP(c, e.signInURL(e.appOrigin+"/", false))
	cb := e.loginAt(c, id, "alice@example.com", "Alice", "")
	e.dbServer.Stop()
	start := time.Now()
	resp, body := get(t, c, cb.String())
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "session_store_unavailable") {
		t.Fatalf("callback with no databroker: %d %s", resp.StatusCode, body)
	}
	if took > 5*time.Second {
		t.Errorf("the 503 page took %v with authenticate_databroker_timeout %v", took, wait)
	}
}

// The queue in signout_queue_dir survives the process: a new queue on the
// same directory holds what the old one had not written.
func TestRevocationQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	q, err := newRevocationQueue(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	r := revocation{SessionID: "../../etc/passwd", UserID: "u1", Queued: time.Now().UTC()}
	if err := q.add(r); err != nil {
		t.Fatal(err)
	}
	q2, err := newRevocationQueue(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := q2.list(); len(got) != 1 || got[0].SessionID != r.SessionID || got[0].UserID != "u1" {
		t.Fatalf("after restart: %+v", got)
	}
	q2.done(r.SessionID)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("dir after done: %v", entries)
	}
	// A directory that cannot be written is refused at start-up.
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		if _, err := newRevocationQueue(ro, log); err == nil {
			t.Error("a read-only signout_queue_dir was accepted")
		}
	}
}
