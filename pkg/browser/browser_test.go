package browser

import (
	"net/http/httptest"
	"testing"
)

func TestIs(t *testing.T) {
	const chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	for _, tc := range []struct {
		name                  string
		accept, ct, requested string
		want                  bool
	}{
		// Pomerium's rule: no Accept, */* or HTML first is a browser.
		{name: "no headers", want: true},
		{name: "any", accept: "*/*", want: true},
		{name: "curl", accept: "*/*", ct: "application/x-www-form-urlencoded", want: true},
		{name: "html", accept: "text/html", want: true},
		{name: "chrome navigation", accept: chrome, want: true},
		{name: "firefox navigation", accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", want: true},
		{name: "text wildcard", accept: "text/*", want: true},
		{name: "image only", accept: "image/png", want: true},
		{name: "html preferred by q", accept: "application/json;q=0.5, text/html", want: true},
		{name: "html earlier at equal q", accept: "text/html, application/json", want: true},
		{name: "unparsable", accept: "garbage", want: true},
		{name: "upper case html", accept: "TEXT/HTML", want: true},
		{name: "json refused", accept: "application/json;q=0, */*", want: true},

		// API clients.
		{name: "json", accept: "application/json", want: false},
		{name: "axios", accept: "application/json, text/plain, */*", want: false},
		{name: "json earlier at equal q", accept: "application/json, text/html", want: false},
		{name: "json preferred by q", accept: "text/html;q=0.5, application/json", want: false},
		{name: "json more specific than wildcard", accept: "*/*, application/json", want: false},
		{name: "application wildcard", accept: "application/*", want: false},
		{name: "plain text", accept: "text/plain", want: false},
		{name: "html refused", accept: "text/html;q=0, */*", want: false},
		{name: "grpc-web", accept: "application/grpc-web-text", want: false},
		{name: "xhr", accept: "*/*", requested: "XMLHttpRequest", want: false},
		{name: "xhr any case", accept: "text/html", requested: "xmlhttprequest", want: false},
		{name: "grpc body", ct: "application/grpc", want: false},
		{name: "grpc+proto body", accept: "text/html", ct: "application/grpc+proto", want: false},
		{name: "grpc-web body", ct: "application/grpc-web-text", want: false},
		{name: "json body", accept: "*/*", ct: "application/json; charset=utf-8", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Is(tc.accept, tc.ct, tc.requested); got != tc.want {
				t.Errorf("Is(%q, %q, %q) = %v, want %v", tc.accept, tc.ct, tc.requested, got, tc.want)
			}
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range map[string]string{"Accept": tc.accept, "Content-Type": tc.ct, "X-Requested-With": tc.requested} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			if got := Request(r); got != tc.want {
				t.Errorf("Request = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseQ(t *testing.T) {
	for in, want := range map[string]int{
		"0": 0, "0.": 0, "0.5": 500, "0.001": 1, "1": 1000, "1.000": 1000, "1.5": 1000,
		"": 1000, "x": 1000, "0.5x": 1000, "0.12345": 1000, "2": 1000,
	} {
		if got := parseQ(in); got != want {
			t.Errorf("parseQ(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestIsDoesNotAllocate(t *testing.T) {
	const accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	if n := testing.AllocsPerRun(100, func() { Is(accept, "", "") }); n != 0 {
		t.Errorf("Is allocates %v times", n)
	}
}
