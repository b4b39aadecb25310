package handoff

import (
	"errors"
	"testing"
)

func TestProgrammaticRedirect(t *testing.T) {
	list := []string{"cli.example.net", "localhost"}
	tests := []struct {
		raw       string
		whitelist []string
		want      bool
	}{
		// Pomerium's rules: exact host name, any port, localhost = loopback.
		{"http://localhost:8000/cb", nil, true},
		{"http://localhost/cb", nil, true},
		{"https://LOCALHOST:1/cb", nil, true},
		{"http://127.0.0.1:9/cb", nil, true},
		{"http://127.8.9.10:9/cb", nil, true},
		{"http://[::1]:9/cb", nil, true},
		{"http://[::ffff:127.0.0.1]:9/cb", nil, true},
		{"https://cli.example.net:4443/cb", list, true},
		{"http://127.0.0.1/cb", list, true},
		// A route host is nothing special: its upstream would log the handle.
		{"https://app.example.com/", nil, false},
		{"http://app.localhost:8080/", nil, false},
		{"http://authenticate.localhost/", nil, false},
		// No subdomains, no suffix tricks, no look-alikes.
		{"https://x.cli.example.net/cb", list, false},
		{"https://cli.example.net.evil.com/cb", list, false},
		{"https://evilcli.example.net/cb", list, false},
		{"http://localhost.evil.com/cb", nil, false},
		{"http://localhost./cb", nil, false},
		{"http://2130706433/cb", nil, false}, // 127.0.0.1 in decimal: browsers resolve it, Go does not parse it
		{"http://0x7f000001/cb", nil, false},
		{"http://[::1%25eth0]:9/cb", nil, false},
		{"http://127.0.0.1/cb", []string{"cli.example.net"}, false}, // localhost not listed
		// Shapes that parsers disagree on.
		{"http://localhost@evil.com/cb", nil, false},
		{"http://evil.com@localhost/cb", nil, false},
		{"http://evil.com\\@localhost/cb", nil, false},
		{"//localhost/cb", nil, false},
		{"/cb", nil, false},
		{"localhost:8000", nil, false},
		{"javascript:alert(1)//localhost", nil, false},
		{"ftp://localhost/cb", nil, false},
		{"http:localhost/cb", nil, false},
		{"", nil, false},
		{"http://%6c%6fcalhost/cb", nil, false},
	}
	for _, tt := range tests {
		u, err := ProgrammaticRedirect(tt.raw, tt.whitelist)
		if got := err == nil; got != tt.want {
			t.Errorf("ProgrammaticRedirect(%q, %v) = %v, %v; want allowed %v", tt.raw, tt.whitelist, u, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrRedirectNotAllowed) {
			t.Errorf("%q: error %v is not ErrRedirectNotAllowed", tt.raw, err)
		}
	}
}
