package cryptutil_test

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

func ExampleSignURL() {
	key, err := cryptutil.DecodeSecret("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=")
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse("https://authenticate.example.com/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fgrafana.example.com%2F")
	now := time.Unix(1767323045, 0)

	signed := cryptutil.SignURL(key, u, now, cryptutil.DefaultSignedURLTTL)
	fmt.Println(signed.Query().Get(cryptutil.QueryExpiry))
	fmt.Println(cryptutil.VerifySignedURL(key, signed, now.Add(time.Minute)))
	err = cryptutil.VerifySignedURL(key, signed, now.Add(time.Hour))
	fmt.Println(errors.Is(err, cryptutil.ErrURLExpired))
	// Output:
	// 1767323345
	// <nil>
	// true
}

func ExampleCipher() {
	key, _ := cryptutil.DecodeSecret("4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=")
	c, err := cryptutil.NewCipher(key)
	if err != nil {
		panic(err)
	}
	sealed := c.Seal([]byte("pkce-verifier"), []byte("_pomerium_csrf"))
	plain, err := c.Open(sealed, []byte("_pomerium_csrf"))
	fmt.Println(string(plain), err)
	_, err = c.Open(sealed, []byte("another cookie"))
	fmt.Println(errors.Is(err, cryptutil.ErrTampered))
	// Output:
	// pkce-verifier <nil>
	// true
}
