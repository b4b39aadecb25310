package main

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// gatehouseProc is one gatehouse process of an end-to-end test: its
// environment (SERVICES, addresses, ...) and its health address.
type gatehouseProc struct {
	name   string
	env    []string
	health string
	proc   *testutil.Process
}

// procSet runs gatehouse processes that share one config file, each with
// its own environment, and can stop and start them again.
type procSet struct {
	t      *testing.T
	bin    string
	config string
	procs  map[string]*gatehouseProc
}

func newProcSet(t *testing.T) procSet {
	return procSet{t: t, bin: testutil.Gatehouse(t), procs: map[string]*gatehouseProc{}}
}

// add declares a process; its health listener gets a free port.
func (s *procSet) add(name string, env ...string) {
	health := testutil.FreeAddr(s.t)
	s.procs[name] = &gatehouseProc{name: name, health: health, env: append(env, "HEALTH_CHECK_ADDR="+health)}
}

func (s *procSet) start(name string) {
	p := s.procs[name]
	p.proc = testutil.StartProcess(s.t, name, s.bin, []string{"--config", s.config}, p.env...)
}

func (s *procSet) waitReady(name string) {
	p := s.procs[name]
	testutil.WaitHTTP(s.t, "http://"+p.health+"/readyz", 30*time.Second, p.proc)
}

// stop sends SIGTERM and requires a clean exit.
func (s *procSet) stop(name string) { s.procs[name].proc.Stop() }
