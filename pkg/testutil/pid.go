package testutil

// Pid returns the operating system's id of the process (for reading
// /proc/<pid>/status and the like).
func (p *Process) Pid() int { return p.cmd.Process.Pid }
