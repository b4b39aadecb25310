package handoff

import "testing"

func TestStripReservedQuery(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"x=%2F&y=a+b&z", "x=%2F&y=a+b&z"},
		{"pomerium_jwt=h", ""},
		{"a=1&pomerium_jwt=h&b=2", "a=1&b=2"},
		{"pomerium_session_encrypted=s&a=1", "a=1"},
		{"POMERIUM_JWT=h&Pomerium_Jwt=h&a=1", "a=1"},
		{"pomerium%5Fjwt=h&a=1", "a=1"},
		{"%70omerium_jwt=h&a=1", "a=1"},
		{"pomerium-jwt=h&a=1", "a=1"},
		{"+pomerium_jwt=h&a=1", "a=1"},
		{"a=1;pomerium_jwt=h&b=2", "b=2"},
		{"pomerium_jwt&a", "a"},
		{"pomerium_signature=s&pomerium_expiry=1&pomerium_issued=1&pomerium_redirect_uri=x", ""},
		{"a=pomerium_jwt&b=2", "a=pomerium_jwt&b=2"}, // a value, not a name
		{"pomeriumjwt=1&xpomerium_jwt=2", "pomeriumjwt=1&xpomerium_jwt=2"},
		{"a=%zz&pomerium_jwt=h", "a=%zz"},
		{"&&a=1&&", "&&a=1&&"},
		{"a=1&&pomerium_jwt=h&b", "a=1&&b"},
	} {
		got, removed := StripReservedQuery(tt.in)
		if got != tt.want {
			t.Errorf("StripReservedQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if removed != (got != tt.in) {
			t.Errorf("StripReservedQuery(%q): removed = %v for %q", tt.in, removed, got)
		}
	}
}

func BenchmarkStripReservedQueryClean(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		StripReservedQuery("page=2&sort=name&filter=active")
	}
}
