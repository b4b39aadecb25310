package signingkey

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestIdentityClaimsMarshalJSON(t *testing.T) {
	t.Parallel()
	full := testClaims()
	withExtra := testClaims()
	withExtra.Groups = nil
	withExtra.Extra = map[string]any{
		"zeta":   []string{"a", "b"},
		"alpha":  1,
		"email":  "overridden@evil.example.com", // reserved: ignored
		"groups": "not a list",                  // reserved: ignored
		"html":   "<b>",
	}
	tests := []struct {
		name   string
		claims any
		want   string
	}{
		{"zero value: groups is []", IdentityClaims{},
			`{"iss":"","aud":"","sub":"","user":"","email":"","name":"","groups":[],"sid":"","jti":"","iat":0,"exp":0}`},
		{"pointer, empty non-nil groups", &IdentityClaims{Groups: []string{}},
			`{"iss":"","aud":"","sub":"","user":"","email":"","name":"","groups":[],"sid":"","jti":"","iat":0,"exp":0}`},
		{"full", full,
			`{"iss":"grafana.example.com","aud":"grafana.example.com","sub":"user-1","user":"user-1","email":"ada@example.com","name":"Ada Lovelace","groups":["admins","eng"],"sid":"session-1","jti":"jwt-1","iat":1767323045,"exp":1767323345}`},
		{"extra claims sorted, reserved ignored", withExtra,
			`{"iss":"grafana.example.com","aud":"grafana.example.com","sub":"user-1","user":"user-1","email":"ada@example.com","name":"Ada Lovelace","groups":[],"sid":"session-1","jti":"jwt-1","iat":1767323045,"exp":1767323345,"alpha":1,"html":"\u003cb\u003e","zeta":["a","b"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("json =\n%s\nwant\n%s", b, tt.want)
			}
			if !json.Valid(b) {
				t.Fatal("invalid JSON")
			}
		})
	}
	if withExtra.Groups != nil {
		t.Fatal("MarshalJSON modified the caller's Groups")
	}
}

func TestIdentityClaimsMarshalError(t *testing.T) {
	t.Parallel()
	c := IdentityClaims{Extra: map[string]any{"ch": make(chan int)}}
	if _, err := json.Marshal(c); err == nil {
		t.Fatal("no error for an unmarshallable extra claim")
	}
}

func TestIdentityClaimsUnmarshalJSON(t *testing.T) {
	t.Parallel()
	in := `{"iss":"grafana.example.com","aud":"grafana.example.com","sub":"user-1","user":"user-1","email":"ada@example.com","name":"Ada","groups":["a"],"sid":"s","jti":"j","iat":1767323045,"exp":1767323345,"alpha":1,"zeta":["a","b"]}`
	var c IdentityClaims
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := IdentityClaims{
		Issuer: "grafana.example.com", Audience: "grafana.example.com", Subject: "user-1", User: "user-1",
		Email: "ada@example.com", Name: "Ada", Groups: []string{"a"}, SessionID: "s", ID: "j",
		IssuedAt: 1767323045, Expiry: 1767323345,
		Extra: map[string]any{"alpha": float64(1), "zeta": []any{"a", "b"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %#v\nwant %#v", c, want)
	}
	out, _ := json.Marshal(c)
	if string(out) != in {
		t.Fatalf("round trip =\n%s\nwant\n%s", out, in)
	}
	if err := json.Unmarshal([]byte(`{"groups":"x"}`), &c); err == nil {
		t.Fatal("no error for groups of the wrong type")
	}
	var none IdentityClaims
	if err := json.Unmarshal([]byte(`{"sub":"u"}`), &none); err != nil || none.Extra != nil {
		t.Fatalf("Extra = %v, %v; want nil", none.Extra, err)
	}
}

func TestSetTimes(t *testing.T) {
	t.Parallel()
	var c IdentityClaims
	c.SetTimes(testNow)
	if c.IssuedAt != 1767323045 || c.Expiry != 1767323045+300 {
		t.Fatalf("iat/exp = %d/%d", c.IssuedAt, c.Expiry)
	}
}
