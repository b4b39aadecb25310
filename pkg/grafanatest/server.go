// Package grafanatest is a test upstream that does with the identity JWT
// what Grafana does with it (measured against a real Grafana): it reads the
// header named by [auth.jwt] header_name, verifies the JWS against a JWKS
// (jwk_set_url over https, fetched lazily and cached, or jwk_set_file),
// checks exp, nbf and iat with 60 s leeway and iss/aud only when
// expect_claims lists them, requires a non-empty sub, and signs the user in
// by email_claim and username_claim against its user table, creating the
// user with the [users] role when auto_sign_up is on. Any failure is a 401
// {"message":"Invalid JWT"}.
//
// It answers /api/user (the signed-in user, as Grafana's JSON), / (a small
// HTML page), POST /api/admin/users (as the guide's "Add Users" step, with
// the built-in admin's basic auth) and /api/health. It is for tests only.
package grafanatest

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// InvalidJWTMessage is the message of every refused JWT (Grafana 9.x).
const InvalidJWTMessage = "Invalid JWT"

// Server is a Grafana-faithful test upstream. Its methods are safe for
// concurrent use.
type Server struct {
	cfg  Config
	keys *keySet

	mu          sync.Mutex
	users       []*User
	nextUserID  int64
	nextOrgID   int64
	lastHeaders http.Header
	lastErr     error
	requests    int
}

// New validates cfg, applies Grafana's defaults, reads jwk_set_file (and
// tls_client_ca) and seeds the user table with the built-in admin (id 1,
// login admin, email admin@localhost). It opens no connection: a
// jwk_set_url is fetched on the first request that carries a JWT.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	keys, err := newKeySet(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, keys: keys, nextOrgID: 1}
	s.mu.Lock()
	_, err = s.newUserLocked(User{
		Login: cfg.AdminUser, Email: "admin@localhost", OrgID: 1, OrgRole: "Admin",
		IsGrafanaAdmin: true, password: cfg.AdminPassword,
	})
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// LastHeaders returns a copy of the headers of the last request received
// (nil before the first).
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeaders.Clone()
}

// LastAuthError returns why the last refused JWT was refused (nil when the
// last request with a JWT was accepted).
func (s *Server) LastAuthError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Requests returns how many requests the server has handled.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// JWKSFetches returns how many times jwk_set_url was requested.
func (s *Server) JWKSFetches() int { return s.keys.fetchCount() }

// Handler returns the HTTP handler: /api/user, /api/admin/users,
// /api/health, /login and /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", s.health)
	mux.HandleFunc("GET /api/user", s.withUser(s.apiUser))
	mux.HandleFunc("POST /api/admin/users", s.withUser(s.adminCreateUser))
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("/", s.withUser(s.home))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.lastHeaders = r.Header.Clone()
		s.requests++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

// errNoAuth marks a request that carries neither a JWT nor basic auth.
var errNoAuth = errors.New("no credentials")

// authenticate returns the signed-in user: by JWT when the header is
// present (then a failure is final), else by basic auth.
func (s *Server) authenticate(r *http.Request) (User, error) {
	if raw := r.Header.Get(s.cfg.HeaderName); raw != "" {
		u, err := s.authenticateJWT(r, tokenFromHeader(raw))
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		if err != nil {
			s.cfg.Logger.Info("jwt refused", "reason", err.Error(), "header", s.cfg.HeaderName)
			return User{}, err
		}
		return u, nil
	}
	if login, password, ok := r.BasicAuth(); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, u := range s.users {
			if u.password != "" && (u.Login == login || u.Email == login) && u.password == password {
				return *u, nil
			}
		}
		return User{}, errors.New("invalid username or password")
	}
	return User{}, errNoAuth
}

func (s *Server) authenticateJWT(r *http.Request, token string) (User, error) {
	claims, err := s.verify(r.Context(), token)
	if err != nil {
		return User{}, err
	}
	id := identity{authID: claims["sub"].(string)}
	if s.cfg.UsernameClaim != "" {
		id.login, _ = claims[s.cfg.UsernameClaim].(string)
		id.lookupLogin = true
	}
	if s.cfg.EmailClaim != "" {
		id.email, _ = claims[s.cfg.EmailClaim].(string)
		id.lookupEmail = true
	}
	id.name, _ = claims["name"].(string)
	if id.login == "" && id.email == "" {
		return User{}, errors.New("missing login and email claim in JWT")
	}
	return s.syncUser(id)
}

// withUser runs h for a signed-in user and answers the failures as
// Grafana does.
func (s *Server) withUser(h func(http.ResponseWriter, *http.Request, User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.authenticate(r)
		switch {
		case err == nil:
			h(w, r, u)
		case r.Header.Get(s.cfg.HeaderName) != "":
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": InvalidJWTMessage})
		case errors.Is(err, errNoAuth) && !strings.HasPrefix(r.URL.Path, "/api/"):
			http.Redirect(w, r, "/login", http.StatusFound)
		case errors.Is(err, errNoAuth):
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		default:
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password"})
		}
	}
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"commit": "grafanatest", "database": "ok", "version": "test"})
}

func (s *Server) apiUser(w http.ResponseWriter, _ *http.Request, u User) {
	writeJSON(w, http.StatusOK, u)
}

// adminCreateUser is POST /api/admin/users (Grafana's admin API).
func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request, admin User) {
	if !admin.IsGrafanaAdmin {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Permission denied"})
		return
	}
	var body struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Login    string `json:"login"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad request data"})
		return
	}
	if body.Login == "" && body.Email == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "login or email is required"})
		return
	}
	if len(body.Password) < 4 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "password is missing or too short"})
		return
	}
	u, err := s.AddUser(body.Login, body.Email, body.Name, body.Password)
	if errors.Is(err, ErrUserExists) {
		writeJSON(w, http.StatusPreconditionFailed, map[string]string{"message": "User with email '" + body.Email + "' or username '" + body.Login + "' already exists"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": u.ID, "uid": u.UID, "message": "User created"})
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Grafana (test)</title></head>
<body><h1>Grafana (test)</h1>
<p>Signed in as <strong id="name">{{if .Name}}{{.Name}}{{else}}{{.Login}}{{end}}</strong>
(login <code id="login">{{.Login}}</code>, email <code id="email">{{.Email}}</code>, role <code id="role">{{.OrgRole}}</code>).</p>
</body></html>
`))

func (s *Server) home(w http.ResponseWriter, r *http.Request, u User) {
	if r.URL.Path != "/" {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = homePage.Execute(w, u)
}

func (s *Server) login(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Grafana (test)</title></head>\n<body><h1>Grafana (test)</h1><p>Not signed in.</p></body></html>\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
