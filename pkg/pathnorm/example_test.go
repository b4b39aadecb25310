package pathnorm_test

import (
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/pkg/pathnorm"
)

func Example() {
	var o pathnorm.Options // the defaults: normalize, merge slashes, refuse %2F and %5C
	for _, p := range []string{"/open/secret", "/open/%73ecret", "/open//secret", "/open/x/../secret", "/open/%2e%2e/open/secret"} {
		norm, _, _ := o.Normalize(p)
		fmt.Printf("%-26s %s\n", p, norm)
	}
	if _, _, err := o.Normalize("/open%2fsecret"); errors.Is(err, pathnorm.ErrEscapedSlash) {
		fmt.Println("/open%2fsecret             refused")
	}
	// Output:
	// /open/secret               /open/secret
	// /open/%73ecret             /open/secret
	// /open//secret              /open/secret
	// /open/x/../secret          /open/secret
	// /open/%2e%2e/open/secret   /open/secret
	// /open%2fsecret             refused
}
