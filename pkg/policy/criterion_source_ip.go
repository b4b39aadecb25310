package policy

import (
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// sourceIPCriterion matches the client address against IP addresses and
// CIDR ranges.
type sourceIPCriterion struct{}

func (sourceIPCriterion) name() string       { return "source_ip" }
func (sourceIPCriterion) takes() valueKind   { return ipValue{} }
func (sourceIPCriterion) needs() subjectData { return needsRequest }
func (sourceIPCriterion) compile(c *Criterion) check {
	ips := slices.Clone(c.IPs)
	return check{
		test: func(in *Input) bool {
			a := in.SourceIP.Unmap().WithZone("")
			for _, p := range ips {
				if p.Contains(a) {
					return true
				}
			}
			return false
		},
		ok: ReasonSourceIPOK, fail: ReasonSourceIPUnauthorized,
	}
}

// ipValue is an IP address, a CIDR range or a list of them
// (Criterion.IPs).
type ipValue struct{}

func (ipValue) parse(c *Criterion, _ string, v *yaml.Node) (err error) {
	c.IPs, err = parseIPs(v)
	return err
}

func (ipValue) check(c *Criterion) error {
	if len(c.IPs) == 0 {
		return astError(c, "criterion %q has no matcher", c.Name)
	}
	return nil
}

func parseIPs(n *yaml.Node) ([]netip.Prefix, error) {
	const what = `criterion "source_ip"`
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, errorf(n, "%s takes an IP address, a CIDR range or a list of them, not an empty list", what)
		}
		items = n.Content
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		return nil, errorf(n, "%s takes an IP address, a CIDR range or a list of them, not %s", what, describe(n))
	}
	strs, nodes, err := texts(items, what)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(strs))
	for i, s := range strs {
		pfx, ok := parseIPOrCIDR(strings.TrimSpace(s))
		if !ok {
			return nil, errorf(nodes[i], "%s: %q is not an IP address or CIDR range", what, s)
		}
		out = append(out, pfx)
	}
	return out, nil
}

// parseIPOrCIDR parses "10.0.0.0/8" or "10.1.2.3" (a /32) into a prefix.
// IPv4-mapped IPv6 addresses become IPv4, as source addresses do at
// evaluation, so "::ffff:10.0.0.1" and "10.0.0.1" are the same address.
func parseIPOrCIDR(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), true
}
