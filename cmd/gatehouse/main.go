// Command gatehouse runs the gatehouse identity-aware access proxy.
package main

func main() {}
