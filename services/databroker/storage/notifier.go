package storage

import "sync"

// Notifier wakes every waiter at once. It is safe for concurrent use; the
// zero value is ready.
//
// A waiter takes C() first, then checks for work, then waits on the
// channel: a Broadcast between the check and the wait still wakes it.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel closed by the next Broadcast.
func (n *Notifier) C() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Broadcast wakes every waiter holding a channel from C.
func (n *Notifier) Broadcast() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
