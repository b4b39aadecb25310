package grafanatest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// User is one row of the test Grafana's user table, with the user's role
// in their org.
type User struct {
	ID             int64     `json:"id"`
	UID            string    `json:"uid"`
	Email          string    `json:"email"`
	Name           string    `json:"name"`
	Login          string    `json:"login"`
	Theme          string    `json:"theme"`
	OrgID          int64     `json:"orgId"`
	OrgRole        string    `json:"orgRole"`
	IsGrafanaAdmin bool      `json:"isGrafanaAdmin"`
	IsDisabled     bool      `json:"isDisabled"`
	IsExternal     bool      `json:"isExternal"`
	AuthLabels     []string  `json:"authLabels"`
	UpdatedAt      time.Time `json:"updatedAt"`
	CreatedAt      time.Time `json:"createdAt"`
	AvatarURL      string    `json:"avatarUrl"`

	// AuthID is the JWT "sub" the user last signed in with ("" until then).
	AuthID string `json:"-"`
	// SignedUpByJWT reports that auto_sign_up created the user.
	SignedUpByJWT bool `json:"-"`

	password string
}

// Errors of the user table.
var (
	// ErrUserNotFound: no user matches and auto_sign_up is off.
	ErrUserNotFound = errors.New("grafanatest: user not found and auto_sign_up is off")
	// ErrUserExists: a user with that login or email exists already.
	ErrUserExists = errors.New("grafanatest: user with that email or login already exists")
)

// identity is what the JWT says about the user.
type identity struct {
	authID, login, email, name string
	lookupLogin, lookupEmail   bool
}

// newUserLocked adds a user; s.mu must be held.
func (s *Server) newUserLocked(u User) (*User, error) {
	if u.Login == "" {
		u.Login = u.Email
	}
	if u.Login == "" {
		return nil, errors.New("grafanatest: a user needs a login or an email")
	}
	for _, e := range s.users {
		if strings.EqualFold(e.Login, u.Login) || (u.Email != "" && strings.EqualFold(e.Email, u.Email)) {
			return nil, ErrUserExists
		}
	}
	s.nextUserID++
	now := s.cfg.Now().UTC().Truncate(time.Second)
	u.ID = s.nextUserID
	sum := sha256.Sum256([]byte(u.Login))
	u.UID = hex.EncodeToString(sum[:7])
	avatar := sha256.Sum256([]byte(strings.ToLower(u.Email)))
	u.AvatarURL = "/avatar/" + hex.EncodeToString(avatar[:16])
	if u.OrgID == 0 {
		if s.cfg.AutoAssignOrg == nil || *s.cfg.AutoAssignOrg {
			u.OrgID, u.OrgRole = 1, s.cfg.AutoAssignOrgRole
		} else {
			s.nextOrgID++
			u.OrgID, u.OrgRole = s.nextOrgID, "Admin"
		}
	}
	if u.AuthLabels == nil {
		u.AuthLabels = []string{}
	}
	u.CreatedAt, u.UpdatedAt = now, now
	p := &u
	s.users = append(s.users, p)
	return p, nil
}

// syncUser finds (or, with auto_sign_up, creates) the user for a verified
// JWT, as Grafana's user sync does: by the JWT's sub once linked, then by
// email, then by login.
func (s *Server) syncUser(id identity) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *User
	for _, u := range s.users {
		if u.AuthID != "" && u.AuthID == id.authID {
			found = u
			break
		}
	}
	if found == nil && id.lookupEmail && id.email != "" {
		for _, u := range s.users {
			if strings.EqualFold(u.Email, id.email) {
				found = u
				break
			}
		}
	}
	if found == nil && id.lookupLogin && id.login != "" {
		for _, u := range s.users {
			if strings.EqualFold(u.Login, id.login) {
				found = u
				break
			}
		}
	}
	if found == nil {
		if !s.cfg.AutoSignUp {
			return User{}, ErrUserNotFound
		}
		u, err := s.newUserLocked(User{
			Login: id.login, Email: id.email, Name: id.name, IsExternal: true,
			AuthLabels: []string{"JWT"}, AuthID: id.authID, SignedUpByJWT: true,
		})
		if err != nil {
			return User{}, err
		}
		return *u, nil
	}
	changed := false
	set := func(dst *string, v string) {
		if v != "" && *dst != v {
			*dst, changed = v, true
		}
	}
	set(&found.Name, id.name)
	set(&found.Email, id.email)
	set(&found.Login, id.login)
	if found.AuthID != id.authID {
		found.AuthID, found.IsExternal, found.AuthLabels = id.authID, true, []string{"JWT"}
		changed = true
	}
	if changed {
		found.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Second)
	}
	return *found, nil
}

// Users returns a copy of the user table, in creation order (the built-in
// admin first).
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	return out
}

// LookupUser returns the user with this login or email.
func (s *Server) LookupUser(loginOrEmail string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if strings.EqualFold(u.Login, loginOrEmail) || strings.EqualFold(u.Email, loginOrEmail) {
			return *u, true
		}
	}
	return User{}, false
}

// AddUser adds a user as the Server Admin > Users > New user page does (an
// empty login becomes the email); the user joins the main org with
// auto_assign_org_role (or, with auto_assign_org off, an org of their own).
func (s *Server) AddUser(login, email, name, password string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.newUserLocked(User{Login: login, Email: email, Name: name, password: password})
	if err != nil {
		return User{}, err
	}
	return *u, nil
}
