package redis

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// NewClient returns a go-redis client for a connection string:
//
//	redis://[user:password@]host:port[/db]         standalone
//	rediss://...                                   standalone over TLS
//	redis+sentinel://[user:password@]h1:p1,h2:p2/master_name[/db]
//	redis-sentinel://... (also rediss+sentinel, rediss-sentinel)
//	redis+cluster://[user:password@]h1:p1,h2:p2    cluster
//	redis-cluster://... (also rediss+cluster, rediss-cluster)
//
// Query parameters are go-redis's (dial_timeout, read_timeout, pool_size,
// addr=host:port for more seed addresses, master_name, ...). For sentinel,
// the URL's credentials are the sentinels'; pass the master's with the
// "password" (and "username") parameters.
func NewClient(connectionString string) (goredis.UniversalClient, error) {
	u, err := url.Parse(connectionString)
	if err != nil {
		return nil, fmt.Errorf("redis connection string: %w", err)
	}
	base, kind, _ := strings.Cut(u.Scheme, "+")
	if kind == "" {
		base, kind, _ = strings.Cut(u.Scheme, "-")
	}
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("redis connection string: unsupported scheme %q (want redis, rediss, redis+sentinel or redis+cluster)", u.Scheme)
	}
	switch kind {
	case "":
		opts, err := goredis.ParseURL(connectionString)
		if err != nil {
			return nil, fmt.Errorf("redis connection string: %w", err)
		}
		return goredis.NewClient(opts), nil
	case "sentinel":
		nu, err := normalize(u, base, true)
		if err != nil {
			return nil, err
		}
		opts, err := goredis.ParseFailoverURL(nu)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel connection string: %w", err)
		}
		if opts.MasterName == "" {
			return nil, fmt.Errorf("redis sentinel connection string: no master name (use redis+sentinel://host:port/master_name)")
		}
		return goredis.NewFailoverClient(opts), nil
	case "cluster":
		nu, err := normalize(u, base, false)
		if err != nil {
			return nil, err
		}
		opts, err := goredis.ParseClusterURL(nu)
		if err != nil {
			return nil, fmt.Errorf("redis cluster connection string: %w", err)
		}
		return goredis.NewClusterClient(opts), nil
	default:
		return nil, fmt.Errorf("redis connection string: unsupported scheme %q", u.Scheme)
	}
}

// normalize turns a multi-host URL into go-redis's form: the first host in
// the authority, the others as addr parameters, and (for sentinel) a path
// "/master_name[/db]" into master_name and "/db".
func normalize(u *url.URL, scheme string, sentinel bool) (string, error) {
	hosts := strings.Split(u.Host, ",")
	q := u.Query()
	for _, h := range hosts[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	path := ""
	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if sentinel && len(segs) > 0 {
		if _, err := strconv.Atoi(segs[0]); err != nil {
			q.Set("master_name", segs[0])
			segs = segs[1:]
		}
	}
	switch {
	case len(segs) == 1 && sentinel:
		path = "/" + segs[0]
	case len(segs) > 0:
		return "", fmt.Errorf("redis connection string: unexpected path %q", u.Path)
	}
	nu := url.URL{Scheme: scheme, User: u.User, Host: hosts[0], Path: path, RawQuery: q.Encode()}
	return nu.String(), nil
}
