package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Network is a private IPv4 network of Linux network namespaces, for tests
// that run processes as containers on a network of their own: a namespace
// holding a bridge, and one namespace per member joined to it by a veth
// pair, with an address of the network's subnet. Names resolve through a
// hosts table written to /etc/netns/<namespace>/hosts, which `ip netns
// exec` mounts over /etc/hosts; a name may have several addresses, as
// Docker's DNS answers one per replica. Members have no route beyond the
// subnet, and the root network namespace is never touched.
//
// It needs root and iproute2's ip: NewNetwork skips the test when not root
// and fails it when ip is missing. Everything is removed when the test
// ends (a test killed by its timeout leaves namespaces named gh<hex>-*).
type Network struct {
	t      testing.TB
	prefix string
	bridge string
	subnet netip.Prefix

	mu     sync.Mutex
	next   netip.Addr
	spaces []*Namespace
	hosts  map[string][]netip.Addr
	order  []string
}

// Namespace is one member of a Network.
type Namespace struct {
	// Name is the namespace's name for `ip netns` (unique per Network).
	Name string
	// Addr is its address on the network.
	Addr netip.Addr
	n    *Network
}

// NewNetwork makes an empty network on subnet (e.g. "10.213.0.0/24"; the
// addresses live only inside the test's namespaces).
func NewNetwork(t testing.TB, subnet string) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testutil: network namespaces need root (CI runs the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("testutil: network namespaces need iproute2's ip: apt-get install iproute2")
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
		t.Fatalf("testutil: subnet %q: want an IPv4 prefix of at least 16 addresses", subnet)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n := &Network{
		t:      t,
		prefix: "gh" + hex.EncodeToString(b),
		subnet: p.Masked(),
		next:   p.Masked().Addr().Next(),
		hosts:  map[string][]netip.Addr{},
	}
	n.bridge = n.prefix + "-net"
	n.ip("netns", "add", n.bridge)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.bridge).Run() })
	n.ip("-n", n.bridge, "link", "set", "lo", "up")
	n.ip("-n", n.bridge, "link", "add", "br0", "type", "bridge")
	n.ip("-n", n.bridge, "link", "set", "br0", "up")
	return n
}

// ip runs one iproute2 command and fails the test if it fails.
func (n *Network) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("testutil: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Add makes a namespace joined to the network with the next free address.
// name must be unique in the network (letters, digits, '-').
func (n *Network) Add(name string) *Namespace {
	n.t.Helper()
	n.mu.Lock()
	addr := n.next
	n.next = addr.Next()
	idx := len(n.spaces)
	ns := &Namespace{Name: n.prefix + "-" + name, Addr: addr, n: n}
	n.spaces = append(n.spaces, ns)
	n.mu.Unlock()
	if !n.subnet.Contains(addr) || addr == lastAddr(n.subnet) {
		n.t.Fatalf("testutil: subnet %s is full", n.subnet)
	}

	etc := filepath.Join("/etc/netns", ns.Name)
	n.ip("netns", "add", ns.Name)
	n.t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns.Name).Run()
		_ = os.RemoveAll(etc)
	})
	if err := os.MkdirAll(etc, 0o755); err != nil {
		n.t.Fatal(err)
	}
	veth := fmt.Sprintf("v%d", idx)
	n.ip("-n", n.bridge, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	n.ip("-n", n.bridge, "link", "set", veth, "master", "br0", "up")
	n.ip("-n", ns.Name, "link", "set", "lo", "up")
	n.ip("-n", ns.Name, "addr", "add", netip.PrefixFrom(addr, n.subnet.Bits()).String(), "dev", "eth0")
	n.ip("-n", ns.Name, "link", "set", "eth0", "up")
	n.writeEtc()
	return ns
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// AddHost adds addresses to a name of the hosts table (every member's
// /etc/hosts). Processes started later see it.
func (n *Network) AddHost(name string, addrs ...netip.Addr) {
	n.t.Helper()
	name = strings.ToLower(name)
	n.mu.Lock()
	if _, ok := n.hosts[name]; !ok {
		n.order = append(n.order, name)
	}
	for _, a := range addrs {
		if !slices.Contains(n.hosts[name], a) {
			n.hosts[name] = append(n.hosts[name], a)
		}
	}
	n.mu.Unlock()
	n.writeEtc()
}

// LookupHost returns the addresses of a name in the hosts table.
func (n *Network) LookupHost(name string) []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.hosts[strings.ToLower(name)])
}

// writeEtc writes every member's /etc/netns/<ns>/hosts, an nsswitch.conf
// that resolves host names from that file only and a resolv.conf naming
// no reachable server, so nothing is ever asked of a real DNS server.
func (n *Network) writeEtc() {
	n.t.Helper()
	n.mu.Lock()
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, name := range n.order {
		for _, a := range n.hosts[name] {
			fmt.Fprintf(&b, "%s\t%s\n", a, name)
		}
	}
	spaces := slices.Clone(n.spaces)
	n.mu.Unlock()
	files := map[string]string{"hosts": b.String()}
	// ip netns exec can only mount over files that exist.
	if data, err := os.ReadFile("/etc/nsswitch.conf"); err == nil {
		files["nsswitch.conf"] = nsswitchFilesOnly(string(data))
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		// Other lookups (SRV, TXT) go to a server that is not there.
		files["resolv.conf"] = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	}
	for _, ns := range spaces {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join("/etc/netns", ns.Name, name), []byte(content), 0o644); err != nil {
				n.t.Fatal(err)
			}
		}
	}
}

// nsswitchFilesOnly is an nsswitch.conf with its hosts line made
// "hosts: files".
func nsswitchFilesOnly(conf string) string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "hosts:") {
			out = append(out, l)
		}
	}
	return "hosts: files\n" + strings.Join(out, "\n")
}

// Command returns cmd for running name with args inside the namespace
// (`ip netns exec`, which execs it: the process is the command itself).
// Set Env to the whole environment the process should get.
func (ns *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Start starts cmd (from Command) as a test Process: its output is kept
// and printed when the test fails, and it is killed when the test ends.
// Unlike StartProcess, cmd.Env is used as is.
func (ns *Namespace) Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{t: t, name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, ns.Name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%s still running: %w", p.name, ctx.Err())
	}
}

// DialContext dials from inside the namespace, for in-process clients
// (http.Transport.DialContext): the socket is made on a thread switched
// into the namespace. Host names resolve through the network's hosts
// table; each address is tried in turn.
func (ns *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs = ns.n.LookupHost(host); len(addrs) == 0 {
		return nil, &net.DNSError{Err: "not in the test network's hosts table", Name: host, IsNotFound: true}
	}
	var errs []error
	for _, a := range addrs {
		c, err := ns.dial(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (ns *Namespace) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A thread in another namespace must never run other goroutines:
		// it stays locked (and ends with this goroutine) unless switching
		// back succeeds. Go never starts threads from locked ones.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns.Name))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns.Name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if setns(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}
